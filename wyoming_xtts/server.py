"""Wiring: settings + engine → synthesis service → Wyoming server."""

import logging
from functools import partial

from wyoming.server import AsyncServer, HandlerFactory

from .engines.base import Engine
from .handler import WyomingTtsHandler
from .settings import Settings
from .synthesis import ServiceSettings, SynthesisService
from .voices import VoiceLibrary

_LOGGER = logging.getLogger(__name__)


def create_engine(settings: Settings) -> Engine:
    """The local XTTS-v2 engine (imported here so torch loads only when it is used)."""
    from .engines.local import LocalEngineConfig, XttsEngine

    return XttsEngine(
        LocalEngineConfig(
            model_dir=settings.model_dir,
            data_dir=settings.data_dir,
            device=settings.device,
            default_language=settings.default_language,
            licence_accepted=settings.agree_cpml,
            builtin_speakers=settings.builtin_speakers,
        )
    )


def build_service(settings: Settings, engine: Engine) -> SynthesisService:
    """The synthesis service over a started engine and the voices directory."""
    return SynthesisService(
        engine,
        VoiceLibrary(settings.voices_dir, settings.default_language),
        ServiceSettings(
            default_voice=settings.default_voice, samples_per_chunk=settings.samples_per_chunk
        ),
    )


def handler_factory(service: SynthesisService, settings: Settings) -> HandlerFactory:
    """Creates one protocol handler per client connection."""
    return partial(WyomingTtsHandler, service=service, max_text_chars=settings.max_text_chars)


async def serve(settings: Settings) -> None:
    """Load the engine and answer Wyoming clients until stopped."""
    engine = create_engine(settings)
    await engine.start()
    try:
        service = build_service(settings, engine)
        voices = await service.list_voices()
        names = ", ".join(voice.name for voice in voices[:20])
        _LOGGER.info(
            "Serving %d voice(s) on %s: %s%s",
            len(voices),
            settings.uri,
            names,
            " ..." if len(voices) > 20 else "",
        )
        await AsyncServer.from_uri(settings.uri).run(handler_factory(service, settings))
    finally:
        await engine.close()
