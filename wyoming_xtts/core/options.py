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

from .engine import DECODER_PRECISIONS, GPT_RUNTIMES, PRECISIONS
from .option import (
    Option,
    SettingsError,
    language,
    matching,
    minutes,
    networks,
    path_or_none,
    seconds,
    text_or_none,
    unless_empty,
    whole,
)

ENGINES = ("local", "replicate", "pixazo")
"""Where speech is made: the local model, or a cloud provider."""

CLOUD_ENGINES = ("replicate", "pixazo")
"""The engines that are a cloud provider (and take --provider-url, --api-key-file)."""

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")
_URI = re.compile(r"^(tcp://[^:/]*:\d+|unix://.+|stdio://)$")
_TCP_URI = re.compile(r"^tcp://[^:/]*:\d+$")
_HTTP_URL = re.compile(r"^https?://[^\s/]+")


def default_service_name() -> str:
    """`wyoming-xtts-<host name>`: unique on a home network, recognisable in Home Assistant."""
    return f"wyoming-xtts-{socket.gethostname().split('.')[0]}"


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


OPTIONS: tuple[Option, ...] = (
    Option(
        "uri",
        "Where to listen: `tcp://HOST:PORT`, `unix://PATH` or `stdio://`",
        matching(_URI, "look like tcp://0.0.0.0:10200, unix://PATH or stdio://"),
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
        unless_empty(_fallback_engine),
        when_unset="*(none)*",
        addon="fallback_engine",
    ),
    Option(
        "max_waiting",
        "Segments that may wait for the engine while it speaks all it can at once "
        "(`--batch-sentences` locally, `--provider-concurrency` in the cloud) (0-1000). One "
        "more goes to the `--fallback-engine` at once, so a busy GPU box hands an announcement "
        "to the cloud instead of keeping it waiting (0: whenever the engine is busy); without "
        "a fallback it is refused with `engine-busy`. See [Fallback "
        "engine](reliability.md#fallback-engine)",
        unless_empty(whole(0, 1000)),
        when_unset="*(no limit)*",
        addon="max_waiting",
    ),
    Option(
        "voices_dir",
        "Directory of voice profiles (written only by `voice add` and the voice studio)",
        path_or_none,
        addon="voices_dir",
    ),
    Option(
        "data_dir",
        "Writable: the downloaded model (`models/`), the latents cache (`latents/`) and the "
        "GPT's ONNX export (`onnx/`, with `--gpt-runtime onnx`)",
        path_or_none,
    ),
    Option(
        "model_dir",
        "An XTTS-v2 checkpoint directory: `config.json`, `model.pth`, `vocab.json`, optional "
        "`speakers_xtts.pth`; fine-tuned checkpoints in this layout work too",
        path_or_none,
        when_unset="*(download)*",
    ),
    Option(
        "device",
        "`auto` (CUDA if PyTorch sees a GPU, else CPU), `cpu`, `cuda`, `cuda:N`",
        matching(_DEVICE, "be auto, cpu, cuda or cuda:N"),
        addon="device",
    ),
    Option(
        "precision",
        "The GPT's arithmetic: `auto` (fp16 on CUDA; on a CPU int8 where it runs fast: AVX2 "
        "or NEON, else fp32), `fp32` (the reference), `int8` (CPU, on ONNX Runtime: weights "
        "quantised in blocks of 32, several times faster than fp32 with slightly different "
        "output), `int4` (the same at 4 bits: faster again, further from fp32), `fp16` (CUDA "
        "only); measured in [Speed](speed.md)",
        choices=PRECISIONS,
        addon="precision",
    ),
    Option(
        "gpt_runtime",
        "What runs the GPT's token loop: `auto` (ONNX Runtime on a CPU, PyTorch on CUDA), "
        "`onnx` (ONNX Runtime, CPU: fp32, int8, int4; the GPT is exported once per checkpoint, "
        "precision and version into `onnx/` under `--data-dir`, see [Speed](speed.md#the-gpt-on-onnx-runtime)) "
        "or `torch` (PyTorch: fp32 on a CPU, the reference; fp32 or fp16 on CUDA)",
        choices=GPT_RUNTIMES,
    ),
    Option(
        "decoder_precision",
        "The HiFi-GAN decoder's arithmetic on a CPU: `fp32` (the reference), or `bf16` (only "
        "where the CPU multiplies bf16 natively, `avx512_bf16` or `amx_bf16`: about 0.6× the "
        "decoder's time, with audio measurably further from fp32's, see "
        "[Speed](speed.md#the-decoder))",
        choices=DECODER_PRECISIONS,
    ),
    Option(
        "batch_sentences",
        "Sentences the local model generates at once, all clients together (1-16): they share "
        "each GPT step, which costs little more for four than for one on a CPU (see "
        "[Several satellites at once](reliability.md#several-satellites-at-once)); more wait "
        "for a free place",
        whole(1, 16),
    ),
    Option(
        "first_chunk_tokens",
        "GPT tokens (46 ms of speech each) generated before a sentence's first audio is decoded "
        "and sent (2-48); later pieces grow to 48 tokens. Smaller starts sooner; the audio is "
        "the same",
        whole(2, 48),
    ),
    Option(
        "unload_after",
        "Minutes without a request after which the local model hands its memory back (GPU "
        "memory to the driver, RAM to the system), for a GPU shared with an LLM; the next "
        "request waits while it loads again (0-10080, e.g. `0.5`; 0: never). Cached "
        "announcements and `describe` are answered meanwhile without loading; see [Idle "
        "unload](speed.md#idle-unload-sharing-the-gpu). Cloud engines ignore it",
        minutes(0.0, 10_080.0),
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
        text_or_none,
        when_unset="*(first profile)*",
        addon="default_voice",
    ),
    Option(
        "default_language",
        "Language of the built-in speakers and of profiles that name none",
        language,
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
        networks,
        when_unset="*(any)*",
    ),
    Option(
        "max_connections",
        "Connections open at once (1-10000); more get `too-many-connections` and are closed",
        whole(1, 10_000),
    ),
    Option(
        "idle_timeout",
        "Seconds a connection may stay silent while nothing is being spoken for it (1-86400); "
        "then `idle` and closed",
        seconds(1.0, 86_400.0),
    ),
    Option(
        "shutdown_grace",
        "Seconds the replies being spoken get to finish when the server is stopped (SIGTERM: "
        "`docker stop`, an add-on restart; or Ctrl-C) (0-300): no new request is taken, then "
        "each reply still running is ended properly for its client and the server exits. Keep "
        "it below the container's stop timeout (Docker's is 10 s). See "
        "[Stopping](reliability.md#stopping)",
        seconds(0.0, 300.0),
        addon="shutdown_grace",
    ),
    Option(
        "http",
        "Also serve the [voice studio](http.md#voice-studio) and the [OpenAI-compatible speech "
        "endpoint](http.md#openai-compatible-speech-endpoint) over HTTP at `tcp://HOST:PORT`, "
        "from the same model and voices; keep it on `127.0.0.1` or behind Home Assistant's ingress",
        unless_empty(matching(_TCP_URI, "look like tcp://127.0.0.1:10201")),
        when_unset="off",
    ),
    Option(
        "http_token",
        "A secret every HTTP request must carry (`Authorization: Bearer …`; the studio asks "
        "for it once); prefer the variable to the flag, which `ps` shows",
        text_or_none,
        when_unset="*(none)*",
    ),
    Option(
        "zeroconf_name",
        "Announce the server over mDNS (`_wyoming._tcp`) so Home Assistant discovers it; "
        "default name `wyoming-xtts-<host name>`; needs a `tcp://` URI",
        text_or_none,
        flag="zeroconf",
        bare_value=default_service_name,
        when_unset="off",
    ),
    Option(
        "zeroconf_host",
        "Address to announce; default: the given bind address, or for `0.0.0.0` the address "
        "of the interface that routes to the mDNS group",
        text_or_none,
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
        whole(64, 65_536),
    ),
    Option(
        "max_text_chars",
        "Longest text of one response (plain or streamed), about five minutes of speech",
        whole(1, 1_000_000),
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
        unless_empty(matching(_HTTP_URL, "be an http:// or https:// URL")),
        when_unset="*(the real API)*",
    ),
    Option(
        "api_key_file",
        "File holding the provider key (e.g. a Docker secret); else `REPLICATE_API_TOKEN` / "
        "`PIXAZO_API_KEY`",
        path_or_none,
        when_unset="*(environment)*",
    ),
    Option(
        "replicate_version",
        "lucataco/xtts-v2 version id (the pinned one is the version its page documents)",
        text_or_none,
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
        seconds(1.0, 3600.0),
    ),
    Option(
        "segments_in_flight",
        "Predictions of one reply running at once (1-16), so later sentences are ready before "
        "playback reaches them",
        whole(1, 16),
    ),
    Option(
        "provider_concurrency",
        "Predictions running at once across all clients (1-64)",
        whole(1, 64),
    ),
    Option(
        "audio_cache_mb",
        "Megabytes of disk (in `DATA_DIR/audio-cache`) for finished audio of voices with a "
        "`seed`, so a repeated announcement starts at once, byte for byte the same "
        "(0: off; least recently used out)",
        whole(0, 1_000_000),
    ),
    Option("debug", "Log at debug level (each segment spoken)", switch=True, addon="debug_logging"),
    Option("log_format", "Python logging format"),
)
"""In the order `--help` and the manual list them."""

SECRET_VARIABLES = {"replicate": "REPLICATE_API_TOKEN", "pixazo": "PIXAZO_API_KEY"}
"""The environment variable holding each cloud provider's key (or use --api-key-file)."""

ADDON_SECRETS = {"replicate_api_token": "replicate", "pixazo_api_key": "pixazo"}
"""Add-on options holding a cloud provider's key, by the provider they are for."""
