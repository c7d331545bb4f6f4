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

from .. import __version__
from ..engines.base import Precision
from .options import ENV_PREFIX, OPTIONS, Option, SettingsError

DEFAULT_URI = "tcp://0.0.0.0:10200"
DEFAULT_LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

COMMAND_NAMES = ("say", "voice", "model", "health")
"""Sub-commands; without one, `wyoming-xtts` runs the server."""

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
    """Directory of voice profiles (one sub-directory per voice); the server writes it only
    when the voice studio changes a voice."""

    data_dir: Path = Path("data")
    """Writable directory for the downloaded model and the conditioning cache."""

    model_dir: Path | None = None
    """An XTTS-v2 checkpoint directory; None downloads the release into the data dir."""

    device: str = "auto"
    """`auto` (CUDA when available), `cpu`, `cuda` or `cuda:N`."""

    precision: Precision = "auto"
    """GPT precision of the local model: `auto` (fp16 on CUDA; int8 on CPUs with AVX2 or NEON, else fp32), `fp32`, `int8`
    (CPU: about twice as fast, slightly different sampling) or `fp16` (CUDA)."""

    deepspeed: bool = False
    """Run the local model's GPT through DeepSpeed's inference kernels (CUDA only)."""

    batch_sentences: int = 4
    """Sentences the local model generates at once, all clients together: they share each
    GPT step, so several satellites speaking at once do not wait for each other's sentences."""

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

    http: str | None = None
    """`tcp://HOST:PORT` of the HTTP front door (voice studio, OpenAI speech); None: off."""

    http_token: str | None = None
    """Secret every HTTP request must present; None: none asked (localhost or ingress)."""

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

    audio_cache_mb: int = 256
    """Disk space for finished audio of seeded voices, replayed for repeats (0: off)."""

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
        if option.switch:
            values[option.field] = raw != option.inverted
        elif raw is not None:
            if option.choices and raw not in option.choices:
                raise SettingsError(f"--{option.name} must be one of {', '.join(option.choices)}")
            values[option.field] = option.parse(option.name, raw) if option.parse else raw
    settings = Settings(**values)  # type: ignore[arg-type]
    if settings.zeroconf_name and not settings.uri.startswith("tcp://"):
        raise SettingsError("--zeroconf announces a TCP server: use a tcp:// --uri with it")
    return settings
