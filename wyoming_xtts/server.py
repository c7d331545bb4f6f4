"""Wiring: settings → engine → core → front doors. The only module that knows them all."""

import asyncio
import logging
import signal
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from .core.admission import Admission
from .core.audio import XTTS_OUTPUT_RATE
from .core.audio_cache import AudioCache
from .core.catalogue import VoiceCatalogue
from .core.engine import Engine, EngineUnavailableError
from .core.fallback import FallbackEngine, FallbackNames
from .core.options import CLOUD_ENGINES, SECRET_VARIABLES
from .core.profiles import ProfileStore
from .core.service import Core
from .core.settings import Settings
from .core.speaking import SpeakingService, SpeakingSettings
from .core.voices import VoiceLibrary
from .doors.wyoming.server import serve_wyoming
from .text.language_detection import LanguageDetector

_LOGGER = logging.getLogger(__name__)


def create_engine(settings: Settings, environ: Mapping[str, str] | None = None) -> Engine:
    """The engine the settings ask for, with its fallback behind it when one is asked for;
    only the local engine imports torch. `environ` holds the cloud providers' keys (default:
    os.environ)."""
    primary = _engine(settings.engine, settings, environ)
    if settings.fallback_engine is None:
        return primary
    fallback = _engine(settings.fallback_engine, settings, environ, primary.sample_rate)
    names = FallbackNames(settings.engine, settings.fallback_engine)
    return FallbackEngine(primary, fallback, names, settings.max_waiting)


def _engine(
    name: str,
    settings: Settings,
    environ: Mapping[str, str] | None,
    sample_rate: int = XTTS_OUTPUT_RATE,
) -> Engine:
    """One engine by its option value: `local`, a cloud provider, or `tcp://HOST:PORT` (a
    Wyoming server, speaking at `sample_rate`: the primary's)."""
    if name == "local":
        return create_local_engine(settings)
    if name.startswith("tcp://"):
        from .engines.wyoming_client.engine import WyomingClientEngine, WyomingServer

        host, _, port = name.removeprefix("tcp://").rpartition(":")
        return WyomingClientEngine(WyomingServer(host, int(port)), sample_rate)
    return create_cloud_engine(settings, environ, name)


def create_local_engine(settings: Settings) -> Engine:
    """XTTS-v2 on this machine, as the settings configure it."""
    try:
        from .engines.local.stack import ONNX_STACK, check_installed_stack, stack_failure

        # Versions first, from metadata: a mismatched pair fails inside the imports below.
        check_installed_stack(
            runtime_packages=() if settings.gpt_runtime == "torch" else ONNX_STACK
        )
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
            gpt_runtime=settings.gpt_runtime,
            decoder_precision=settings.decoder_precision,
            deepspeed=settings.deepspeed,
            batch_sentences=settings.batch_sentences,
            schedule=ChunkSchedule(first_tokens=settings.first_chunk_tokens),
            unload_after=settings.unload_after,
        )
    )


def create_cloud_engine(
    settings: Settings, environ: Mapping[str, str] | None = None, name: str | None = None
) -> Engine:
    """A cloud engine for `name` (default: `settings.engine`), `replicate` or `pixazo`.

    --provider-url, --api-key-file and --replicate-version configure the first cloud engine
    the settings name (the engine, else the fallback): a cloud fallback behind a cloud engine
    speaks to its provider's real API with the key from its own environment variable."""
    from .engines.cloud import pixazo, replicate
    from .engines.cloud.engine import CloudEngine, CloudProvider, CloudSettings
    from .engines.cloud.http import RetryPolicy, load_secret

    name = name or settings.engine
    configured = name == next(
        (
            engine
            for engine in (settings.engine, settings.fallback_engine)
            if engine in CLOUD_ENGINES
        ),
        None,
    )
    url = settings.provider_url if configured else None
    key_file = settings.api_key_file if configured else None
    retry = RetryPolicy()
    provider: CloudProvider
    if name == "replicate":
        provider = replicate.ReplicateProvider(
            url or replicate.DEFAULT_BASE_URL,
            load_secret((SECRET_VARIABLES["replicate"],), key_file, environ),
            (settings.replicate_version if configured else None) or replicate.DEFAULT_VERSION,
            retry,
        )
    elif name == "pixazo":
        provider = pixazo.PixazoProvider(
            url or pixazo.DEFAULT_BASE_URL,
            load_secret((SECRET_VARIABLES["pixazo"],), key_file, environ),
            retry,
        )
    else:
        raise ValueError(f"unknown engine {name!r}")
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
            _admission(settings, engine),
        ),
        program=engine.info,
        profiles=ProfileStore(library),
    )


def _admission(settings: Settings, engine: Engine) -> Admission:
    """The engine's slots; `--max-waiting` bounds its queue here unless a fallback engine
    bounds the primary's own (`FallbackEngine`), where a segment refused can still be spoken."""
    bounded = not isinstance(engine, FallbackEngine)
    return Admission(
        engine.max_concurrency, settings.max_waiting if bounded else None, settings.engine
    )


async def serve(settings: Settings) -> None:
    """Load the engine, build the core, and answer clients at every front door until SIGTERM
    or SIGINT: Wyoming always, HTTP (the voice studio and the OpenAI endpoint) when --http is
    given. Stopping lets the replies in flight finish (`--shutdown-grace`), then closes the
    engine; a second signal stops at once."""
    stop = asyncio.Event()
    with _stopped_by_signals(stop):
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
            async with asyncio.TaskGroup() as doors:
                doors.create_task(serve_wyoming(core, settings, stop))
                if settings.http is not None:
                    from .doors.http.server import serve_http  # aiohttp only when asked for

                    doors.create_task(serve_http(core, settings, stop))
        finally:
            await engine.close()
    _LOGGER.info("Stopped")


@contextmanager
def _stopped_by_signals(stop: asyncio.Event) -> Iterator[None]:
    """SIGTERM (`docker stop`, an add-on restart) and SIGINT (Ctrl-C) set `stop`; a second
    one of either stops at once, as if no handler were installed. As a container's PID 1
    the process gets no default handling of SIGTERM at all: without this it would ignore it
    until Docker kills it."""
    loop = asyncio.get_running_loop()
    signals = (signal.SIGTERM, signal.SIGINT)

    def received(number: signal.Signals) -> None:
        if stop.is_set():
            for handled in signals:
                loop.remove_signal_handler(handled)
            signal.raise_signal(number)
            return
        _LOGGER.info("%s received: stopping (send it again to stop at once)", number.name)
        stop.set()

    for number in signals:
        loop.add_signal_handler(number, received, number)
    try:
        yield
    finally:
        for number in signals:
            loop.remove_signal_handler(number)


def _audio_cache(settings: Settings) -> AudioCache | None:
    """The cache of finished audio `--audio-cache-mb` asks for (None: off)."""
    if settings.audio_cache_mb == 0:
        return None
    return AudioCache(settings.data_dir / "audio-cache", settings.audio_cache_mb * 1_000_000)
