"""Server settings: one typed object built from the command line and the environment.

Every option can also be set with an environment variable named `WYOMING_XTTS_<OPTION>`
(`--voices-dir` → `WYOMING_XTTS_VOICES_DIR`); the command line wins over the environment.
"""

import argparse
import logging
import os
import re
import socket
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from .. import __version__
from ..engines.base import PRECISIONS, Precision
from ..text.languages import XTTS_LANGUAGES, normalize_language
from .networks import parse_networks

ENV_PREFIX = "WYOMING_XTTS_"
"""Prefix of the environment variables that set options."""

_N = TypeVar("_N", int, float)

DEFAULT_URI = "tcp://0.0.0.0:10200"
DEFAULT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

COMMAND_NAMES = ("say", "voice", "model", "health")
"""Sub-commands; without one, `wyoming-xtts` runs the server."""

ENGINES = ("local", "replicate", "pixazo")
"""Where speech is made: the local model, or a cloud provider."""

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_URI = re.compile(r"^(tcp://[^:/]*:\d+|unix://.+|stdio://)$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Everything the server is configured with."""

    uri: str = DEFAULT_URI
    """Where to listen: `tcp://HOST:PORT`, `unix://PATH` or `stdio://`."""

    engine: str = "local"
    """`local` (XTTS-v2 on this machine), `replicate` or `pixazo` (cloud providers)."""

    voices_dir: Path = Path("voices")
    """Directory of voice profiles (one sub-directory per voice); only ever read."""

    data_dir: Path = Path("data")
    """Writable directory for the downloaded model and the conditioning cache."""

    model_dir: Path | None = None
    """An XTTS-v2 checkpoint directory; None downloads the release into the data dir."""

    device: str = "auto"
    """`auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`."""

    precision: Precision = "auto"
    """GPT precision of the local model: `auto` (fp16 on CUDA, fp32 on CPU), `fp32`, `int8`
    (CPU: about twice as fast, slightly different sampling) or `fp16` (CUDA)."""

    deepspeed: bool = False
    """Run the local model's GPT through DeepSpeed's inference kernels (CUDA only)."""

    first_chunk_tokens: int = 8
    """GPT tokens (46.4 ms of speech each) generated before the first audio of a sentence is
    decoded and sent; later pieces grow up to 48 tokens."""

    default_voice: str | None = None
    """Voice used when a request names none; None picks the first profile by name."""

    default_language: str = "en"
    """Language of voices that do not name one (built-in speakers, profiles without one)."""

    builtin_speakers: bool = True
    """Offer the checkpoint's studio speakers (speakers_xtts.pth) as voices too."""

    samples_per_chunk: int = 1024
    """Audio samples per `audio-chunk` event."""

    max_text_chars: int = 5000
    """Longest text one response accepts, in characters (about five minutes of speech)."""

    agree_cpml: bool = False
    """The user accepts the CPML licence of the XTTS-v2 weights (allows the download)."""

    provider_url: str | None = None
    """Base URL of the cloud provider's API; None uses the provider's real one."""

    api_key_file: Path | None = None
    """File holding the provider's API key; None reads it from the environment."""

    replicate_version: str | None = None
    """Replicate model version id of lucataco/xtts-v2; None uses the pinned one."""

    cleanup_voice: bool = False
    """Ask the cloud provider to denoise reference clips (profiles can override)."""

    provider_timeout: float = 60.0
    """Seconds a cloud provider gets to deliver one segment's audio."""

    segments_in_flight: int = 3
    """Cloud predictions of one reply running at once (later sentences ahead of playback)."""

    provider_concurrency: int = 8
    """Cloud predictions running at once across all clients."""

    zeroconf_name: str | None = None
    """Announce the server over mDNS under this name (None: no announcement)."""

    zeroconf_host: str | None = None
    """Address to announce instead of the detected one (e.g. the Docker host's)."""

    max_connections: int = 32
    """Connections open at once; more are refused."""

    idle_timeout: float = 300.0
    """Seconds a connection may stay silent with nothing being spoken before it is closed."""

    allow: str = ""
    """Comma-separated client addresses/networks allowed to connect (empty: any)."""

    language_detection: bool = True
    """Voices with several languages speak each segment in the language it is written in."""

    debug: bool = False
    """Log at DEBUG level."""

    log_format: str = DEFAULT_LOG_FORMAT
    """`logging` format string."""

    @property
    def log_level(self) -> int:
        """The logging level these settings ask for."""
        return logging.DEBUG if self.debug else logging.INFO


def configure_logging(settings: Settings) -> None:
    """Logs to standard error (with stdio:// standard output carries the protocol)."""
    logging.basicConfig(level=settings.log_level, format=settings.log_format, stream=sys.stderr)
    # One line per provider HTTP request is only worth reading when debugging; httpcore's
    # connection traces never are.
    logging.getLogger("httpx").setLevel(logging.DEBUG if settings.debug else logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)


class SettingsError(ValueError):
    """An option value that cannot work; the message says which and why."""


def parse_settings(
    argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None
) -> Settings:
    """Build settings from arguments (default: sys.argv) and environment (default: os.environ)."""
    settings, _ = parse_command(argv, environ)
    return settings


def parse_command(
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    *,
    prog: str = "wyoming-xtts",
    description: str | None = None,
    extra: Callable[[argparse.ArgumentParser], None] | None = None,
) -> tuple[Settings, argparse.Namespace]:
    """Settings plus a command's own arguments, which `extra` adds to the parser.

    Commands that load an engine (`say`) take every server option, so they behave exactly
    like the server they stand in for.
    """
    env = os.environ if environ is None else environ
    parser = _parser(env, prog, description)
    if extra is not None:
        extra(parser)
    args = parser.parse_args(argv)
    try:
        return _validated(args), args
    except SettingsError as err:
        parser.error(str(err))
        raise  # parser.error exits; this keeps type checkers informed


def default_service_name() -> str:
    """`wyoming-xtts-<host name>`: unique on a home network, recognisable in Home Assistant."""
    return f"wyoming-xtts-{socket.gethostname().split('.')[0]}"


def _env(env: Mapping[str, str], name: str) -> str | None:
    return env.get(ENV_PREFIX + name.upper().replace("-", "_"))


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    raw = _env(env, name)
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise SystemExit(f"{ENV_PREFIX}{name.upper().replace('-', '_')}={raw!r} is not a boolean")
    return value in _TRUE


def _parser(env: Mapping[str, str], prog: str, description: str | None) -> argparse.ArgumentParser:
    defaults = Settings()
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            description or "Wyoming text-to-speech server for Coqui XTTS-v2 voice cloning."
        )
        + f" Every option can also be set as an environment variable {ENV_PREFIX}<OPTION>."
        + ("" if description else f" Other commands: {', '.join(COMMAND_NAMES)} (--help on each)."),
    )

    def option(name: str, default: object, help_text: str, **kwargs: object) -> None:
        from_env = _env(env, name)
        parser.add_argument(
            f"--{name}",
            default=from_env if from_env is not None else default,
            help=f"{help_text} (default: %(default)s)",
            **kwargs,  # type: ignore[arg-type]
        )

    option("uri", defaults.uri, "where to listen: tcp://HOST:PORT, unix://PATH or stdio://")
    option("engine", defaults.engine, "local, replicate or pixazo", choices=ENGINES)
    option("voices-dir", defaults.voices_dir, "directory of voice profiles")
    option("data-dir", defaults.data_dir, "writable directory for the model and caches")
    option("model-dir", None, "XTTS-v2 checkpoint directory (else the release is downloaded)")
    option("device", defaults.device, "auto, cpu, cuda or cuda:N")
    option(
        "precision",
        defaults.precision,
        "GPT precision: auto (fp16 on CUDA, fp32 on CPU), fp32, int8 (CPU, ~2x faster) or fp16",
        choices=PRECISIONS,
    )
    option(
        "first-chunk-tokens",
        defaults.first_chunk_tokens,
        "GPT tokens (46 ms each) before a sentence's first audio is sent (2-48)",
    )
    option("default-voice", None, "voice for requests that name none (else the first profile)")
    option(
        "default-language",
        defaults.default_language,
        "language of voices that name none, e.g. the built-in speakers",
    )
    option("samples-per-chunk", defaults.samples_per_chunk, "samples per audio chunk")
    option("max-text-chars", defaults.max_text_chars, "longest text of one response")
    option("log-format", defaults.log_format, "Python logging format")
    option("provider-url", None, "cloud provider API base URL (default: the real one)")
    option(
        "api-key-file",
        None,
        "file with the provider API key (else REPLICATE_API_TOKEN / PIXAZO_API_KEY)",
    )
    option("replicate-version", None, "lucataco/xtts-v2 version id (default: the pinned one)")
    option("provider-timeout", defaults.provider_timeout, "seconds per segment at a cloud provider")
    option(
        "segments-in-flight", defaults.segments_in_flight, "cloud predictions of one reply at once"
    )
    option(
        "provider-concurrency",
        defaults.provider_concurrency,
        "cloud predictions at once, all clients",
    )

    def flag(name: str, help_text: str, also: bool = False) -> None:
        parser.add_argument(
            f"--{name}", action="store_true", default=_env_flag(env, name) or also, help=help_text
        )

    flag(
        "cleanup-voice",
        "ask the cloud provider to denoise reference clips (voice.toml can override)",
    )
    parser.add_argument(
        "--zeroconf",
        nargs="?",
        const=default_service_name(),
        default=_env(env, "zeroconf"),
        metavar="NAME",
        help="announce the server over mDNS so Home Assistant discovers it "
        "(default name: %(const)s)",
    )
    option("max-connections", defaults.max_connections, "connections open at once (1-10000)")
    option("idle-timeout", defaults.idle_timeout, "seconds before a silent connection is closed")
    option(
        "allow",
        defaults.allow,
        "client networks allowed, e.g. 192.168.1.0/24,127.0.0.1 (default: any)",
    )
    option("zeroconf-host", None, "address to announce (default: this machine's LAN address)")
    flag(
        "no-language-detection",
        "voices always speak their first language (see voice.toml detect_language)",
    )
    flag("deepspeed", "run the GPT through DeepSpeed inference kernels (CUDA, needs deepspeed)")
    flag("no-builtin-speakers", "do not offer the model's built-in studio speakers as voices")
    flag(
        "agree-cpml",
        "accept the non-commercial CPML licence of the XTTS-v2 weights so they can be "
        "downloaded (also COQUI_TOS_AGREED=1)",
        also=env.get("COQUI_TOS_AGREED") == "1",
    )
    flag("debug", "log debug messages")
    parser.add_argument("--version", action="version", version=__version__)
    return parser


def _seconds(name: str, raw: object, low: float, high: float) -> float:
    return _in_range(name, raw, float, low, high, "a number of seconds")


def _networks(raw: str) -> str:
    try:
        parse_networks(raw)
    except ValueError as err:
        raise SettingsError(f"--allow: {err}") from None
    return raw.strip()


def _positive_int(name: str, raw: object, low: int, high: int) -> int:
    return _in_range(name, raw, int, low, high, "a whole number")


def _in_range(
    name: str, raw: object, parse: Callable[[str], _N], low: _N, high: _N, kind: str
) -> _N:
    """`raw` parsed and checked against [low, high]; `SettingsError` naming the option if not."""
    try:
        value = parse(str(raw))
    except ValueError:
        raise SettingsError(f"--{name} must be {kind}, not {raw!r}") from None
    if not low <= value <= high:
        shown = [f"{x:g}" if isinstance(x, float) else str(x) for x in (low, high, value)]
        raise SettingsError(f"--{name} must be between {shown[0]} and {shown[1]}, not {shown[2]}")
    return value


def _validated(args: argparse.Namespace) -> Settings:
    if not _URI.match(args.uri):
        raise SettingsError(
            f"--uri {args.uri!r} must look like tcp://0.0.0.0:10200, unix://PATH or stdio://"
        )
    if not _DEVICE.match(args.device):
        raise SettingsError(f"--device {args.device!r} must be auto, cpu, cuda or cuda:N")
    language = normalize_language(args.default_language)
    if language is None:
        raise SettingsError(
            f"--default-language {args.default_language!r} is not one XTTS-v2 speaks "
            f"({', '.join(XTTS_LANGUAGES)})"
        )
    timeout = _seconds("provider-timeout", args.provider_timeout, 1.0, 3600.0)
    if args.zeroconf and not args.uri.startswith("tcp://"):
        raise SettingsError("--zeroconf announces a TCP server: use a tcp:// --uri with it")
    if args.provider_url and not re.match(r"^https?://[^\s/]+", args.provider_url):
        raise SettingsError(
            f"--provider-url {args.provider_url!r} must be an http:// or https:// URL"
        )
    return Settings(
        uri=args.uri,
        engine=args.engine,
        voices_dir=Path(args.voices_dir).expanduser(),
        data_dir=Path(args.data_dir).expanduser(),
        model_dir=Path(args.model_dir).expanduser() if args.model_dir else None,
        device=args.device,
        precision=args.precision,
        deepspeed=args.deepspeed,
        first_chunk_tokens=_positive_int("first-chunk-tokens", args.first_chunk_tokens, 2, 48),
        default_voice=args.default_voice or None,
        default_language=language,
        builtin_speakers=not args.no_builtin_speakers,
        samples_per_chunk=_positive_int("samples-per-chunk", args.samples_per_chunk, 64, 65536),
        max_text_chars=_positive_int("max-text-chars", args.max_text_chars, 1, 1_000_000),
        agree_cpml=args.agree_cpml,
        provider_url=args.provider_url or None,
        api_key_file=Path(args.api_key_file).expanduser() if args.api_key_file else None,
        replicate_version=args.replicate_version or None,
        cleanup_voice=args.cleanup_voice,
        provider_timeout=timeout,
        segments_in_flight=_positive_int("segments-in-flight", args.segments_in_flight, 1, 16),
        provider_concurrency=_positive_int(
            "provider-concurrency", args.provider_concurrency, 1, 64
        ),
        max_connections=_positive_int("max-connections", args.max_connections, 1, 10_000),
        idle_timeout=_seconds("idle-timeout", args.idle_timeout, 1.0, 86_400.0),
        allow=_networks(args.allow),
        zeroconf_name=args.zeroconf or None,
        zeroconf_host=args.zeroconf_host or None,
        language_detection=not args.no_language_detection,
        debug=args.debug,
        log_format=args.log_format,
    )
