"""Wiring: settings → engine → core → front doors. The only module that knows them all."""

import asyncio
import logging
from collections.abc import Mapping
from contextlib import AsyncExitStack

from .core.audio_cache import AudioCache
from .core.catalogue import VoiceCatalogue
from .core.engine import Engine, EngineUnavailableError
from .core.options import SECRET_VARIABLES
from .core.profiles import ProfileStore
from .core.service import Core
from .core.settings import Settings
from .core.speaking import SpeakingService, SpeakingSettings
from .core.voices import VoiceLibrary
from .doors.wyoming.server import serve_wyoming
from .text.language_detection import LanguageDetector

_LOGGER = logging.getLogger(__name__)


def create_engine(settings: Settings) -> Engine:
    """The engine the settings ask for; only the local one imports torch."""
    if settings.engine == "local":
        try:
            from .engines.local.stack import check_installed_stack, stack_failure

            # Versions first, from metadata: a mismatched pair fails inside the imports below.
            check_installed_stack()
            from .engines.local.engine import LocalEngineConfig, XttsEngine
            from .engines.local.xtts_stream import ChunkSchedule
        except ImportError as err:
            raise EngineUnavailableError(
                f"The local engine needs PyTorch and coqui-tts, which are not installed "
                f"({err}): install them with pip install 'wyoming-xtts[local]' (script/install "
                "local in a clone), "
                "or use a cloud provider with --engine replicate or --engine pixazo."
            ) from None
        except OSError as err:  # a compiled library built for another release
            raise stack_failure("importing PyTorch and coqui-tts", err) from err

        return XttsEngine(
            LocalEngineConfig(
                model_dir=settings.model_dir,
                data_dir=settings.data_dir,
                device=settings.device,
                default_language=settings.default_language,
                licence_accepted=settings.agree_cpml,
                builtin_speakers=settings.builtin_speakers,
                precision=settings.precision,
                deepspeed=settings.deepspeed,
                batch_sentences=settings.batch_sentences,
                schedule=ChunkSchedule(first_tokens=settings.first_chunk_tokens),
                unload_after=settings.unload_after,
            )
        )
    return create_cloud_engine(settings)


def create_cloud_engine(settings: Settings, environ: Mapping[str, str] | None = None) -> Engine:
    """A cloud engine for `settings.engine` (`replicate` or `pixazo`)."""
    from .engines.cloud import pixazo, replicate
    from .engines.cloud.engine import CloudEngine, CloudProvider, CloudSettings
    from .engines.cloud.http import RetryPolicy, load_secret

    retry = RetryPolicy()
    provider: CloudProvider
    if settings.engine == "replicate":
        provider = replicate.ReplicateProvider(
            settings.provider_url or replicate.DEFAULT_BASE_URL,
            load_secret((SECRET_VARIABLES["replicate"],), settings.api_key_file, environ),
            settings.replicate_version or replicate.DEFAULT_VERSION,
            retry,
        )
    elif settings.engine == "pixazo":
        provider = pixazo.PixazoProvider(
            settings.provider_url or pixazo.DEFAULT_BASE_URL,
            load_secret((SECRET_VARIABLES["pixazo"],), settings.api_key_file, environ),
            retry,
        )
    else:
        raise ValueError(f"unknown engine {settings.engine!r}")
    return CloudEngine(
        provider,
        CloudSettings(
            timeout_s=settings.provider_timeout,
            segments_in_flight=settings.segments_in_flight,
            max_requests=settings.provider_concurrency,
            cleanup_voice=settings.cleanup_voice,
        ),
    )


def build_core(
    settings: Settings, engine: Engine, detector: LanguageDetector | None = None
) -> Core:
    """The core over a started engine and the voices directory."""
    library = VoiceLibrary(settings.voices_dir, settings.default_language)
    catalogue = VoiceCatalogue(engine, library, settings.default_voice)
    return Core(
        catalogue=catalogue,
        speaking=SpeakingService(
            engine,
            SpeakingSettings(
                samples_per_chunk=settings.samples_per_chunk,
                detect_language=settings.language_detection,
            ),
            detector,
            _audio_cache(settings),
            catalogue.resolve_voice,
        ),
        program=engine.info,
        profiles=ProfileStore(library),
    )


async def serve(settings: Settings) -> None:
    """Load the engine, build the core, and answer clients at every front door until stopped:
    Wyoming always, HTTP (the voice studio and the OpenAI endpoint) when --http is given."""
    engine = create_engine(settings)
    await engine.start()
    try:
        detector = LanguageDetector()
        await asyncio.to_thread(detector.load)
        core = build_core(settings, engine, detector)
        voices = await core.catalogue.list_voices()
        names = ", ".join(voice.name for voice in voices[:20])
        _LOGGER.info(
            "Serving %d voice(s) on %s: %s%s",
            len(voices),
            settings.uri,
            names,
            " ..." if len(voices) > 20 else "",
        )
        async with AsyncExitStack() as doors:
            if settings.http is not None:
                from .doors.http.server import serving_http  # aiohttp only when asked for

                await doors.enter_async_context(serving_http(core, settings))
            await serve_wyoming(core, settings)
    finally:
        await engine.close()


def _audio_cache(settings: Settings) -> AudioCache | None:
    """The cache of finished audio `--audio-cache-mb` asks for (None: off)."""
    if settings.audio_cache_mb == 0:
        return None
    return AudioCache(settings.data_dir / "audio-cache", settings.audio_cache_mb * 1_000_000)
