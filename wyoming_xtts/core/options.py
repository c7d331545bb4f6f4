"""Every server option, declared once.

`Settings` (settings.py) holds each option's type and default; `OPTIONS` here holds the
rest: its command-line name, how its text is checked and turned into a value, what it means
(the one place that says so: `--help` and the manual's options table print it), and its name
in the Home Assistant add-on. The parser, the validation, the environment variables, the
manual's options table (a test compares them, `option_exports.py`) and the add-on's option
mapping are all derived from these two.
"""

import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..text.languages import XTTS_LANGUAGES, normalize_language
from .engine import GPT_RUNTIMES, PRECISIONS
from .generation import NumberRange, OutOfRangeError
from .networks import parse_networks

ENV_PREFIX = "WYOMING_XTTS_"
"""Prefix of the environment variables that set options."""

ENGINES = ("local", "replicate", "pixazo")
"""Where speech is made: the local model, or a cloud provider."""

CLOUD_ENGINES = ("replicate", "pixazo")
"""The engines that are a cloud provider (and take --provider-url, --api-key-file)."""

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_URI = re.compile(r"^(tcp://[^:/]*:\d+|unix://.+|stdio://)$")
_TCP_URI = re.compile(r"^tcp://[^:/]*:\d+$")
_HTTP_URL = re.compile(r"^https?://[^\s/]+")


class SettingsError(ValueError):
    """An option value that cannot work; the message says which and why."""


def default_service_name() -> str:
    """`wyoming-xtts-<host name>`: unique on a home network, recognisable in Home Assistant."""
    return f"wyoming-xtts-{socket.gethostname().split('.')[0]}"


@dataclass(frozen=True)
class Option:
    """One option of the server (and of `say`, which takes them all)."""

    field: str
    """The `Settings` field it sets."""

    meaning: str
    """What it does, in one sentence or two: `--help` and the manual's table say this, and
    nothing else in the code does (`Settings` documents only what code must know)."""

    parse: Callable[[str, str], Any] | None = None
    """Turns the text given into the field's value, or raises `SettingsError`; called with the
    option's command-line name and the text. None: the text as it is."""

    switch: bool = False
    """Takes no value: given (or its variable set to 1, true, yes or on) means on."""

    inverted: bool = False
    """A switch that turns its field off: `--no-builtin-speakers` sets `builtin_speakers`."""

    flag: str | None = None
    """Command-line name when it is not the field's own (`zeroconf` for `zeroconf_name`)."""

    choices: tuple[str, ...] = ()
    """The only values accepted, when there is such a list."""

    when_unset: str | None = None
    """What the manual says the default is when the field's default is None."""

    bare_value: Callable[[], str] | None = None
    """The value when the option is given with no value (`--zeroconf` alone)."""

    addon: str | None = None
    """Its name in the Home Assistant add-on's options (`homeassistant-addon/config.yaml`)."""

    also_on_when: str | None = None
    """Another environment variable that turns this switch on when set to exactly "1"."""

    @property
    def name(self) -> str:
        """The command-line name, without the dashes."""
        return self.flag or ("no-" if self.inverted else "") + self.field.replace("_", "-")

    @property
    def environment(self) -> str:
        """The environment variable that sets it."""
        return ENV_PREFIX + self.name.upper().replace("-", "_")


def _in_range(limits: NumberRange) -> Callable[[str, str], Any]:
    def parse(name: str, text: str) -> int | float:
        try:
            return limits.parse(f"--{name}", text)
        except OutOfRangeError as err:
            raise SettingsError(str(err)) from None

    return parse


def _whole(low: int, high: int) -> Callable[[str, str], int]:
    return _in_range(NumberRange(int, low, high))


def _seconds(low: float, high: float) -> Callable[[str, str], float]:
    return _in_range(NumberRange(float, low, high, unit="seconds"))


def _minutes(low: float, high: float) -> Callable[[str, str], float]:
    return _in_range(NumberRange(float, low, high, unit="minutes"))


def _matching(pattern: re.Pattern[str], shape: str) -> Callable[[str, str], str]:
    def parse(name: str, text: str) -> str:
        if not pattern.match(text):
            raise SettingsError(f"--{name} {text!r} must {shape}")
        return text

    return parse


def _unless_empty(parse: Callable[[str, str], Any]) -> Callable[[str, str], Any]:
    """`parse` for a non-empty text; an empty one (a variable set to "") means unset."""
    return lambda name, text: parse(name, text) if text else None


def _path(name: str, text: str) -> Path | None:
    return Path(text).expanduser() if text else None


def _text_or_none(name: str, text: str) -> str | None:
    return text or None


def _language(name: str, text: str) -> str:
    language = normalize_language(text)
    if language is None:
        raise SettingsError(
            f"--{name} {text!r} is not one XTTS-v2 speaks ({', '.join(XTTS_LANGUAGES)})"
        )
    return language


def _fallback_engine(name: str, text: str) -> str:
    if text in ENGINES:
        return text
    if _TCP_URI.match(text):
        host, _, port = text.removeprefix("tcp://").rpartition(":")
        if host and 0 < int(port) < 65_536:
            return text
    raise SettingsError(
        f"--{name} {text!r} must be one of {', '.join(ENGINES)} or a Wyoming text-to-speech "
        "server's tcp://HOST:PORT"
    )


def _networks(name: str, text: str) -> str:
    try:
        parse_networks(text)
    except ValueError as err:
        raise SettingsError(f"--{name}: {err}") from None
    return text.strip()


OPTIONS: tuple[Option, ...] = (
    Option(
        "uri",
        "Where to listen: `tcp://HOST:PORT`, `unix://PATH` or `stdio://`",
        _matching(_URI, "look like tcp://0.0.0.0:10200, unix://PATH or stdio://"),
    ),
    Option(
        "engine",
        "`local` (XTTS-v2 on this machine), `replicate` or `pixazo` (cloud providers, see "
        "[Cloud providers](providers.md))",
        choices=ENGINES,
        addon="engine",
    ),
    Option(
        "fallback_engine",
        "What speaks when the engine cannot start a reply (see [Fallback "
        "engine](reliability.md#fallback-engine)): `local`, `replicate`, `pixazo` (not the "
        "`--engine` itself), or another Wyoming text-to-speech server at `tcp://HOST:PORT` "
        "(a Piper beside Home Assistant: a different voice beats silence)",
        _unless_empty(_fallback_engine),
        when_unset="*(none)*",
        addon="fallback_engine",
    ),
    Option(
        "voices_dir",
        "Directory of voice profiles (written only by `voice add` and the voice studio)",
        _path,
        addon="voices_dir",
    ),
    Option(
        "data_dir",
        "Writable: the downloaded model (`models/`), the latents cache (`latents/`) and the "
        "GPT's ONNX export (`onnx/`, with `--gpt-runtime onnx`)",
        _path,
    ),
    Option(
        "model_dir",
        "An XTTS-v2 checkpoint directory: `config.json`, `model.pth`, `vocab.json`, optional "
        "`speakers_xtts.pth`; fine-tuned checkpoints in this layout work too",
        _path,
        when_unset="*(download)*",
    ),
    Option(
        "device",
        "`auto` (CUDA if PyTorch sees a GPU, else CPU), `cpu`, `cuda`, `cuda:N`",
        _matching(_DEVICE, "be auto, cpu, cuda or cuda:N"),
        addon="device",
    ),
    Option(
        "precision",
        "The GPT's arithmetic: `auto` (fp16 on CUDA; on a CPU int8 where it runs fast: AVX2 "
        "or NEON, else fp32), `fp32`, `int8` (CPU only: weights quantised to 8 bits, several "
        "times faster than fp32 with slightly different output, measured in "
        "[Speed](speed.md)), `fp16` (CUDA only)",
        choices=PRECISIONS,
        addon="precision",
    ),
    Option(
        "gpt_runtime",
        "What runs the GPT's token loop on a CPU: `torch` (PyTorch, every precision), or "
        "`onnx` (ONNX Runtime, fp32 only for now: `--precision auto` then means fp32; the GPT "
        "is exported once per checkpoint and version into `onnx/` under `--data-dir`, 20 s "
        "and 1.5 GB for the release on 2 cores; opt-in while it is measured, see [Speed](speed.md))",
        choices=GPT_RUNTIMES,
    ),
    Option(
        "batch_sentences",
        "Sentences the local model generates at once, all clients together (1-16): they share "
        "each GPT step, which costs little more for four than for one on a CPU (see "
        "[Several satellites at once](reliability.md#several-satellites-at-once)); more wait "
        "for a free place",
        _whole(1, 16),
    ),
    Option(
        "first_chunk_tokens",
        "GPT tokens (46 ms of speech each) generated before a sentence's first audio is decoded "
        "and sent (2-48); later pieces grow to 48 tokens. Smaller starts sooner; the audio is "
        "the same",
        _whole(2, 48),
    ),
    Option(
        "unload_after",
        "Minutes without a request after which the local model hands its memory back (GPU "
        "memory to the driver, RAM to the system), for a GPU shared with an LLM; the next "
        "request waits while it loads again (0-10080, e.g. `0.5`; 0: never). Cached "
        "announcements and `describe` are answered meanwhile without loading; see [Idle "
        "unload](speed.md#idle-unload-sharing-the-gpu). Cloud engines ignore it",
        _minutes(0.0, 10_080.0),
        addon="unload_after",
    ),
    Option(
        "deepspeed",
        "Run the GPT through DeepSpeed's inference kernels (CUDA only; `pip install deepspeed` "
        "first)",
        switch=True,
    ),
    Option(
        "default_voice",
        "Voice for requests that name none",
        _text_or_none,
        when_unset="*(first profile)*",
        addon="default_voice",
    ),
    Option(
        "default_language",
        "Language of the built-in speakers and of profiles that name none",
        _language,
        addon="default_language",
    ),
    Option(
        "builtin_speakers",
        "Do not list the model's 58 studio speakers as voices",
        switch=True,
        inverted=True,
    ),
    Option(
        "allow",
        "Client addresses or networks allowed to connect, comma-separated "
        "(`192.168.1.0/24,127.0.0.1`); others are closed at once",
        _networks,
        when_unset="*(any)*",
    ),
    Option(
        "max_connections",
        "Connections open at once (1-10000); more get `too-many-connections` and are closed",
        _whole(1, 10_000),
    ),
    Option(
        "idle_timeout",
        "Seconds a connection may stay silent while nothing is being spoken for it (1-86400); "
        "then `idle` and closed",
        _seconds(1.0, 86_400.0),
    ),
    Option(
        "shutdown_grace",
        "Seconds the replies being spoken get to finish when the server is stopped (SIGTERM: "
        "`docker stop`, an add-on restart; or Ctrl-C) (0-300): no new request is taken, then "
        "each reply still running is ended properly for its client and the server exits. Keep "
        "it below the container's stop timeout (Docker's is 10 s). See "
        "[Stopping](reliability.md#stopping)",
        _seconds(0.0, 300.0),
        addon="shutdown_grace",
    ),
    Option(
        "http",
        "Also serve the [voice studio](http.md#voice-studio) and the [OpenAI-compatible speech "
        "endpoint](http.md#openai-compatible-speech-endpoint) over HTTP at `tcp://HOST:PORT`, "
        "from the same model and voices; keep it on `127.0.0.1` or behind Home Assistant's ingress",
        _unless_empty(_matching(_TCP_URI, "look like tcp://127.0.0.1:10201")),
        when_unset="off",
    ),
    Option(
        "http_token",
        "A secret every HTTP request must carry (`Authorization: Bearer …`; the studio asks "
        "for it once); prefer the variable to the flag, which `ps` shows",
        _text_or_none,
        when_unset="*(none)*",
    ),
    Option(
        "zeroconf_name",
        "Announce the server over mDNS (`_wyoming._tcp`) so Home Assistant discovers it; "
        "default name `wyoming-xtts-<host name>`; needs a `tcp://` URI",
        _text_or_none,
        flag="zeroconf",
        bare_value=default_service_name,
        when_unset="off",
    ),
    Option(
        "zeroconf_host",
        "Address to announce; default: the given bind address, or for `0.0.0.0` the address "
        "of the interface that routes to the mDNS group",
        _text_or_none,
        when_unset="*(detected)*",
    ),
    Option(
        "language_detection",
        "Every voice speaks its first language (see "
        "[Language and text](text.md#how-the-language-is-chosen))",
        switch=True,
        inverted=True,
        addon="language_detection",
    ),
    Option(
        "samples_per_chunk",
        "Samples per `audio-chunk` event (64-65536)",
        _whole(64, 65_536),
    ),
    Option(
        "max_text_chars",
        "Longest text of one response (plain or streamed), about five minutes of speech",
        _whole(1, 1_000_000),
    ),
    Option(
        "agree_cpml",
        "Accept the CPML licence so the weights can be downloaded (`COQUI_TOS_AGREED=1` also "
        "counts)",
        switch=True,
        addon="agree_cpml",
        also_on_when="COQUI_TOS_AGREED",  # coqui-tts' own way of accepting it
    ),
    Option(
        "provider_url",
        "Cloud provider base URL: `https://api.replicate.com/v1`, `https://gateway.pixazo.ai`",
        _unless_empty(_matching(_HTTP_URL, "be an http:// or https:// URL")),
        when_unset="*(the real API)*",
    ),
    Option(
        "api_key_file",
        "File holding the provider key (e.g. a Docker secret); else `REPLICATE_API_TOKEN` / "
        "`PIXAZO_API_KEY`",
        _path,
        when_unset="*(environment)*",
    ),
    Option(
        "replicate_version",
        "lucataco/xtts-v2 version id (the pinned one is the version its page documents)",
        _text_or_none,
        when_unset="`684bc385…d55e`",
    ),
    Option(
        "cleanup_voice",
        "Ask the provider to denoise reference clips; `cleanup_voice` in a `voice.toml` "
        "overrides it",
        switch=True,
        addon="cleanup_voice",
    ),
    Option(
        "provider_timeout",
        "Seconds one segment may take at the provider (create, wait, download), 1-3600",
        _seconds(1.0, 3600.0),
    ),
    Option(
        "segments_in_flight",
        "Predictions of one reply running at once (1-16), so later sentences are ready before "
        "playback reaches them",
        _whole(1, 16),
    ),
    Option(
        "provider_concurrency",
        "Predictions running at once across all clients (1-64)",
        _whole(1, 64),
    ),
    Option(
        "audio_cache_mb",
        "Megabytes of disk (in `DATA_DIR/audio-cache`) for finished audio of voices with a "
        "`seed`, so a repeated announcement starts at once, byte for byte the same "
        "(0: off; least recently used out)",
        _whole(0, 1_000_000),
    ),
    Option("debug", "Log at debug level (each segment spoken)", switch=True, addon="debug_logging"),
    Option("log_format", "Python logging format"),
)
"""In the order `--help` and the manual list them."""

SECRET_VARIABLES = {"replicate": "REPLICATE_API_TOKEN", "pixazo": "PIXAZO_API_KEY"}
"""The environment variable holding each cloud provider's key (or use --api-key-file)."""

ADDON_SECRETS = {"replicate_api_token": "replicate", "pixazo_api_key": "pixazo"}
"""Add-on options holding a cloud provider's key, by the provider they are for."""
