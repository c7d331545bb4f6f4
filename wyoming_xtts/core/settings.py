"""Server settings: one typed object built from the command line and the environment.

Every option can also be set with an environment variable named `WYOMING_XTTS_<OPTION>`
(`--voices-dir` → `WYOMING_XTTS_VOICES_DIR`); the command line wins over the environment.
Each field's type, default and reason are declared here, everything else about its option
(name, checks, help, add-on name) in options.py; the parser is built from the two.
"""

import argparse
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from .engine import DecoderPrecision, GptRuntime, Precision
from .option import ENV_PREFIX, Option, SettingsError
from .options import OPTIONS

DEFAULT_URI = "tcp://0.0.0.0:10200"
DEFAULT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

COMMAND_NAMES = ("say", "voice", "model", "health")
"""Sub-commands; without one, `wyoming-xtts` runs the server."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Settings:
    """Everything the server is configured with.

    What each field means to a user is said once, by its option in `OPTIONS` (options.py),
    which `--help` and the manual's options table print; the notes here say only what code
    reading a field must know (units, what None or empty stands for, who resolves it).
    """

    uri: str = DEFAULT_URI
    """`tcp://HOST:PORT`, `unix://PATH` or `stdio://` (checked by its option)."""

    engine: str = "local"
    """One of `options.ENGINES`: picks the engine `server.create_engine` builds."""

    fallback_engine: str | None = None
    """None: no fallback; else one of `options.ENGINES` other than `engine`, or a Wyoming
    server's `tcp://HOST:PORT` (`server.create_engine` wraps both in `core/fallback.py`)."""

    max_waiting: int | None = None
    """None: segments wait for the engine however many there are (core/admission.py)."""

    voices_dir: Path = Path("voices")
    """Read by the catalogue; written only by `ProfileStore`."""

    data_dir: Path = Path("data")
    """Must be writable: the model download, the conditioning and audio caches."""

    model_dir: Path | None = None
    """None: the release, downloaded under `data_dir`."""

    device: str = "auto"
    """`auto`, `cpu` or `cuda[:N]`; `auto` is resolved by the local engine."""

    precision: Precision = "auto"
    """As asked; `auto` is resolved by the local engine (engines/local/precision.py)."""

    gpt_runtime: GptRuntime = "auto"
    """Local engine only; resolved with the precision (engines/local/precision.py)."""

    decoder_precision: DecoderPrecision = "fp32"
    """Local engine on a CPU only; `bf16` is refused where the CPU lacks native bf16."""

    deepspeed: bool = False
    """Local engine, CUDA only; forces `batch_sentences` to 1."""

    batch_sentences: int = 4
    """Rows of the local engine's shared GPT step."""

    first_chunk_tokens: int = 8
    """GPT tokens (46.4 ms of speech each) before a sentence's first decoded piece."""

    unload_after: float = 0.0
    """Minutes (fractions allowed); 0: the local model is never unloaded."""

    default_voice: str | None = None
    """None: a profile marked `default`, else the first profile by name."""

    default_language: str = "en"
    """An XTTS language code (normalised by its option)."""

    builtin_speakers: bool = True
    """Whether the catalogue lists the engine's built-in speakers."""

    samples_per_chunk: int = 1024
    """16-bit samples per `audio-chunk` event."""

    max_text_chars: int = 5000
    """Characters per response, counted before clean-up (SSML tags included)."""

    agree_cpml: bool = False
    """Lets `engines/local/model_files.py` download the weights."""

    provider_url: str | None = None
    """None: the provider's real API."""

    api_key_file: Path | None = None
    """None: the key comes from `options.SECRET_VARIABLES`' variable."""

    replicate_version: str | None = None
    """None: the version the Replicate engine pins."""

    cleanup_voice: bool = False
    """The default of a profile's own `cleanup_voice`."""

    provider_timeout: float = 60.0
    """Seconds per segment, all retries included."""

    segments_in_flight: int = 3
    """Cloud predictions of one reply running at once."""

    provider_concurrency: int = 8
    """Cloud predictions running at once, all clients together."""

    http: str | None = None
    """`tcp://HOST:PORT`; None: no HTTP door."""

    http_token: str | None = None
    """None: the HTTP door asks for no token."""

    zeroconf_name: str | None = None
    """None: no mDNS announcement; needs a tcp:// `uri`."""

    zeroconf_host: str | None = None
    """None: the address is detected."""

    max_connections: int = 32
    """Wyoming connections open at once."""

    idle_timeout: float = 300.0
    """Seconds of silence from a client, with nothing being spoken to it."""

    shutdown_grace: float = 5.0
    """Seconds, for both doors at once; inside Docker's 10 s stop timeout."""

    allow: str = ""
    """Comma-separated addresses and networks (`networks.parse_networks`); empty: any."""

    language_detection: bool = True
    """Whether voices with several languages detect each segment's."""

    audio_cache_mb: int = 256
    """0: no audio cache."""

    debug: bool = False
    """Sets `log_level` to DEBUG."""

    log_format: str = DEFAULT_LOG_FORMAT
    """A `logging` format string."""

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
        return _settings(args), args
    except SettingsError as err:
        parser.error(str(err))
        raise  # parser.error exits; this keeps type checkers informed


def _parser(env: Mapping[str, str], prog: str, description: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            description or "Wyoming text-to-speech server for Coqui XTTS-v2 voice cloning."
        )
        + f" Every option can also be set as an environment variable {ENV_PREFIX}<OPTION>."
        + ("" if description else f" Other commands: {', '.join(COMMAND_NAMES)} (--help on each)."),
    )
    defaults = Settings()
    for option in OPTIONS:
        _add(parser, option, env, getattr(defaults, option.field))
    parser.add_argument("--version", action="version", version=__version__)
    return parser


def _add(
    parser: argparse.ArgumentParser, option: Option, env: Mapping[str, str], default: object
) -> None:
    given = env.get(option.environment)
    if option.switch:
        on = _flag(option, given) or (
            option.also_on_when is not None and env.get(option.also_on_when) == "1"
        )
        parser.add_argument(
            f"--{option.name}",
            action="store_true",
            default=on,
            dest=option.field,
            help=option.meaning,
        )
        return
    shown = option.when_unset if default in (None, "") and option.when_unset else default
    parser.add_argument(
        f"--{option.name}",
        dest=option.field,
        default=given,
        choices=option.choices or None,
        nargs="?" if option.bare_value else None,
        const=option.bare_value() if option.bare_value else None,
        metavar="NAME" if option.bare_value else None,
        help=f"{option.meaning} (default: {shown})".replace("%", "%%"),
    )


def _flag(option: Option, raw: str | None) -> bool:
    if raw is None:
        return False
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise SystemExit(f"{option.environment}={raw!r} is not a boolean")
    return value in _TRUE


def _settings(args: argparse.Namespace) -> Settings:
    """Each given value checked and converted by its option; absent ones keep the default."""
    values: dict[str, object] = {}
    for option in OPTIONS:
        raw = getattr(args, option.field)
        if option.switch or raw is not None:
            values[option.field] = _value(option, raw)
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.zeroconf_name and not settings.uri.startswith("tcp://"):
        raise SettingsError("--zeroconf announces a TCP server: use a tcp:// --uri with it")
    if settings.fallback_engine == settings.engine:
        raise SettingsError("--fallback-engine must be another engine than --engine")
    if settings.fallback_engine and _is_itself(settings.fallback_engine, settings.uri):
        raise SettingsError(
            f"--fallback-engine {settings.fallback_engine} is this server itself (--uri "
            f"{settings.uri}): a reply it cannot speak would come back to it"
        )
    return settings


_THIS_MACHINE = {"127.0.0.1", "localhost", "::1", "[::1]", "0.0.0.0", ""}


def _is_itself(fallback: str, uri: str) -> bool:
    """Whether a tcp:// fallback is the server's own address (as far as names tell)."""
    if not (fallback.startswith("tcp://") and uri.startswith("tcp://")):
        return False
    host, _, port = fallback.removeprefix("tcp://").rpartition(":")
    bound_host, _, bound_port = uri.removeprefix("tcp://").rpartition(":")
    if port != bound_port:
        return False
    return host == bound_host or (host in _THIS_MACHINE and bound_host in _THIS_MACHINE)


def _value(option: Option, raw: Any) -> object:
    """The field's value for what was given (a switch: whether it was)."""
    if option.switch:
        return raw != option.inverted
    if option.choices and raw not in option.choices:
        raise SettingsError(f"--{option.name} must be one of {', '.join(option.choices)}")
    return option.parse(option.name, raw) if option.parse else raw


def setting_from_environment(field: str, environ: Mapping[str, str] | None = None) -> Any:
    """One server setting as the server itself would take it from the environment alone,
    its default otherwise: for the commands that share a few of the server's options
    (`voice --voices-dir`, `model --data-dir`) and must agree with it about their defaults."""
    env = os.environ if environ is None else environ
    (option,) = (option for option in OPTIONS if option.field == field)
    default = getattr(Settings(), field)
    parser = argparse.ArgumentParser(add_help=False)
    _add(parser, option, env, default)
    raw = getattr(parser.parse_args([]), field)
    if not option.switch and raw is None:
        return default
    try:
        return _value(option, raw)
    except SettingsError as err:
        raise SystemExit(f"{option.environment}: {err}") from None
