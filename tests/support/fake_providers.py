"""Local HTTP servers on 127.0.0.1 that behave as the provider documents describe.

`FakeReplicate` implements Replicate's predictions API for lucataco/xtts-v2 (create with
`Prefer: wait`, get, cancel, files, problem+json errors); `FakePixazo` the Pixazo gateway's
queue (generate → 202, status polling, CDN media). Knobs on each instance script failures.
Each output is a tone whose pitch encodes the sentence number found in the text
("sentence 3" → 300 + 3 × 100 Hz), so tests can check the order audio arrives in.
"""

import base64
import io
import json
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import soundfile

REPLICATE_TOKEN = "r8_TestSecretToken0123456789abcdef"
PIXAZO_KEY = "pixazo-test-secret-key-4567"
REPLICATE_VERSION = "684bc3855b37866c0c65add2ff39c78f3dea3f4ff103a436465326e0f438d55e"
LANGUAGES = {
    "en",
    "es",
    "fr",
    "de",
    "it",
    "pt",
    "pl",
    "tr",
    "ru",
    "nl",
    "cs",
    "ar",
    "zh",
    "hu",
    "ko",
    "hi",
}
_SENTENCE_NUMBER = re.compile(r"sentence (\d+)", re.IGNORECASE)


def tone_for(text: str, seconds: float = 0.6, rate: int = 24_000) -> bytes:
    """A peak-normalised WAV tone, as the model's output is; pitch encodes the sentence number."""
    match = _SENTENCE_NUMBER.search(text)
    frequency = 300 + 100 * (int(match.group(1)) if match else 0)
    t = np.arange(int(seconds * rate)) / rate
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.02)
    signal = 0.99 * np.sin(2 * np.pi * frequency * t) * fade + 1e-3
    buffer = io.BytesIO()
    soundfile.write(buffer, signal, rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


@dataclass
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)

    def json(self) -> Any:
        return json.loads(self.body)


class FakeProvider:
    """A threaded HTTP server; subclasses answer in `respond`."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.release = threading.Event()
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                request = Recorded(
                    self.command, self.path, dict(self.headers.items()), self.rfile.read(length)
                )
                with fake._lock:
                    fake.requests.append(request)
                status, headers, body = fake.respond(request)
                try:
                    self.send_response(status)
                    for name, value in headers.items():
                        self.send_header(name, value)
                    if "Content-Length" not in headers:
                        self.send_header("Content-Length", str(len(body)))
                    else:  # announces more than it sends: close, as a dropped download does
                        self.close_connection = True
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        # A short poll: every test stops its fake, and the default 0.5 s poll was waited out
        # each time (about 40 s over the suite).
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> "FakeProvider":
        self._thread.start()
        return self

    def stop(self) -> None:
        self.release.set()
        self._server.shutdown()
        self._server.server_close()

    def respond(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        raise NotImplementedError

    def hang(self) -> None:
        """Hold this request open until the test ends (a provider that stopped answering)."""
        self.release.wait(timeout=60)

    def calls(self, method: str, path_prefix: str) -> list[Recorded]:
        with self._lock:
            return [
                r for r in self.requests if r.method == method and r.path.startswith(path_prefix)
            ]


def _json(
    status: int, body: Any, content_type: str = "application/json", **headers: str
) -> tuple[int, dict[str, str], bytes]:
    return status, {"Content-Type": content_type, **headers}, json.dumps(body).encode()


def _problem(
    status: int, title: str, detail: str, **extra: Any
) -> tuple[int, dict[str, str], bytes]:
    return _json(
        status,
        {"title": title, "detail": detail, "status": status, **extra},
        "application/problem+json",
    )


@dataclass
class _Prediction:
    id: str
    input: dict[str, Any]
    created: float
    canceled: bool = False


class FakeReplicate(FakeProvider):
    """Replicate's /v1 predictions API for lucataco/xtts-v2."""

    def __init__(self) -> None:
        super().__init__()
        self.processing_s = 0.05
        """How long a prediction takes once created (plus `processing_s_per_char`)."""
        self.processing_s_per_char = 0.0
        """Extra prediction time per character of text, as a real model takes."""
        self.audio_s_per_char: float | None = None
        """Output length per character of text (None: a fixed 0.6 s tone)."""
        self.hold_s = 60.0
        """Longest `Prefer: wait` the fake honours (0: answer at once, still `starting`)."""
        self.throttle_creates = 0
        """Answer this many creates with 429 first."""
        self.retry_after: str | None = None
        """Retry-After header on those 429s (else the body's 'resets in ~1s' hint)."""
        self.unavailable_creates = 0
        """Answer this many creates with 503 first."""
        self.create_error: tuple[int, str, str] | None = None
        """(status, title, detail) to answer every create with."""
        self.prediction_error: str | None = None
        """Predictions fail with this error."""
        self.output: str = "wav"
        """`wav`, `garbage` (bytes that are not audio) or `empty` (a WAV with no samples)."""
        self.cut_outputs = 0
        """Serve this many output downloads cut in half first (see `cut_kind`)."""
        self.cut_kind = "header"
        """`header`: a WAV whose header declares twice the bytes sent; `connection`: the
        whole length announced in Content-Length, half sent, the connection closed."""
        self.never_finish = False
        """Predictions stay `processing` forever."""
        self.hang_creates = False
        """Creates are never answered (a provider that stopped responding)."""
        self.output_host: str | None = None
        """Serve outputs from this host name instead of 127.0.0.1 (another origin, public)."""
        self.predictions: dict[str, _Prediction] = {}

    def respond(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        output = re.fullmatch(r"/output/(\w+)\.wav", request.path)
        if output and request.method == "GET" and self.output_host:
            return self._output(self.predictions[output.group(1)])  # a public CDN
        if request.headers.get("Authorization") != f"Bearer {REPLICATE_TOKEN}":
            return _problem(401, "Unauthenticated", "You did not pass a valid authentication token")
        if request.method == "POST" and request.path == "/v1/predictions":
            return self._create(request)
        if request.method == "POST" and request.path == "/v1/files":
            file_id = uuid.uuid4().hex
            expires = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400))
            return _json(
                201,
                {
                    "id": file_id,
                    "urls": {"get": f"{self.base}/v1/files/{file_id}/download"},
                    "expires_at": expires,
                },
            )
        match = re.fullmatch(r"/v1/predictions/(\w+)(/cancel)?", request.path)
        if match and match.group(1) in self.predictions:
            prediction = self.predictions[match.group(1)]
            if match.group(2):
                prediction.canceled = True
            return _json(200, self._state(prediction))
        if output and request.method == "GET":
            return self._output(self.predictions[output.group(1)])
        return _problem(404, "Not found", "Not found")

    def _create(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        if self.throttle_creates > 0:
            self.throttle_creates -= 1
            headers = {"Retry-After": self.retry_after} if self.retry_after is not None else {}
            return _json(
                429, {"detail": "Request was throttled. Your rate limit resets in ~1s."}, **headers
            )
        if self.unavailable_creates > 0:
            self.unavailable_creates -= 1
            return _problem(503, "Service Unavailable", "Try again later")
        if self.hang_creates:
            self.hang()
            return _problem(503, "Service Unavailable", "gave up")
        if self.create_error:
            return _problem(*self.create_error)
        body = request.json()
        inputs = body.get("input", {})
        invalid = []
        if body.get("version") != REPLICATE_VERSION:
            invalid.append({"field": "version", "description": "Invalid version or not permitted"})
        if not str(inputs.get("speaker", "")).startswith(("http://", "https://", "data:")):
            invalid.append({"field": "input.speaker", "description": "Does not match format 'uri'"})
        if inputs.get("language", "en") not in LANGUAGES:
            invalid.append(
                {
                    "field": "input.language",
                    "description": "language must be one of the enum values",
                }
            )
        if invalid:
            return _problem(
                422, "Input validation failed", "- input: invalid", invalid_fields=invalid
            )
        prediction = _Prediction(uuid.uuid4().hex[:26], inputs, time.monotonic())
        self.predictions[prediction.id] = prediction
        wait = re.fullmatch(r"wait(?:=(\d+))?", request.headers.get("Prefer", ""))
        if wait:
            hold = min(float(wait.group(1) or 60), self.hold_s)
            deadline = time.monotonic() + hold
            while (
                self._state(prediction)["status"] not in ("succeeded", "failed")
                and time.monotonic() < deadline
            ):
                time.sleep(0.01)
        return _json(201, self._state(prediction))

    def _state(self, prediction: _Prediction) -> dict[str, Any]:
        state: dict[str, Any] = {
            "id": prediction.id,
            "model": "lucataco/xtts-v2",
            "version": REPLICATE_VERSION,
            "input": prediction.input,
            "urls": {
                "get": f"{self.base}/v1/predictions/{prediction.id}",
                "cancel": f"{self.base}/v1/predictions/{prediction.id}/cancel",
            },
            "output": None,
            "error": None,
        }
        elapsed = time.monotonic() - prediction.created
        text = prediction.input.get("text", "")
        busy = self.processing_s + self.processing_s_per_char * len(text)
        if prediction.canceled:
            state["status"] = "canceled"
        elif self.never_finish or elapsed < busy:
            state["status"] = "starting" if elapsed < busy / 2 else "processing"
        elif self.prediction_error:
            state.update(status="failed", error=self.prediction_error)
        else:
            output_base = self.base.replace("127.0.0.1", self.output_host or "127.0.0.1")
            state.update(
                status="succeeded",
                output=f"{output_base}/output/{prediction.id}.wav",
                metrics={"predict_time": busy},
            )
        return state

    def _output(self, prediction: _Prediction) -> tuple[int, dict[str, str], bytes]:
        if self.output == "garbage":
            return (
                200,
                {"Content-Type": "audio/wav"},
                b"RIFF\x00\x00garbage that is not a wave file" * 10,
            )
        if self.output == "empty":
            buffer = io.BytesIO()
            soundfile.write(buffer, np.zeros(0), 24_000, format="WAV", subtype="PCM_16")
            return 200, {"Content-Type": "audio/wav"}, buffer.getvalue()
        text = prediction.input.get("text", "")
        seconds = 0.6 if self.audio_s_per_char is None else self.audio_s_per_char * len(text)
        audio = tone_for(text, seconds)
        with self._lock:
            cut = self.cut_outputs > 0
            self.cut_outputs -= cut
        if not cut:
            return 200, {"Content-Type": "audio/wav"}, audio
        if self.cut_kind == "header":
            return 200, {"Content-Type": "audio/wav"}, audio[: len(audio) // 2]
        announced = {"Content-Type": "audio/wav", "Content-Length": str(len(audio))}
        return 200, announced, audio[: len(audio) // 2]


class FakePixazo(FakeProvider):
    """The Pixazo gateway's xtts-v2 queue API."""

    def __init__(self) -> None:
        super().__init__()
        self.processing_s = 0.3
        """Time from QUEUED to COMPLETED."""
        self.final_status = "COMPLETED"
        """`COMPLETED`, `FAILED` or `ERROR`."""
        self.generate_error: tuple[int, str, str] | None = None
        """(status, error, message) to answer every generate with."""
        self.jobs: dict[str, tuple[float, dict[str, Any]]] = {}

    def respond(self, request: Recorded) -> tuple[int, dict[str, str], bytes]:
        if request.method == "GET" and request.path.startswith("/media/"):
            job = self.jobs[request.path.removeprefix("/media/").removesuffix(".wav")]
            return (
                200,
                {"Content-Type": "application/octet-stream"},
                tone_for(job[1].get("text", "")),
            )
        if request.headers.get("Ocp-Apim-Subscription-Key") != PIXAZO_KEY:
            return _json(
                401,
                {
                    "error": "Unauthorized",
                    "message": "Access denied due to invalid subscription key.",
                },
            )
        if request.method == "POST" and request.path == "/voice-clone/v1/xtts-v2/generate":
            if self.generate_error:
                status, error, message = self.generate_error
                return _json(status, {"error": error, "message": message})
            body = request.json()
            if not str(body.get("speaker", "")).startswith(("http://", "https://")):
                return _json(400, {"error": "Bad Request", "message": "speaker must be a URL"})
            if body.get("language", "en") not in LANGUAGES:
                return _json(
                    400,
                    {
                        "error": "Bad Request",
                        "message": f"Unsupported language {body.get('language')}",
                    },
                )
            request_id = f"xtts-v2-api_{uuid.uuid4()}"
            self.jobs[request_id] = (time.monotonic(), body)
            return _json(
                202,
                {
                    "request_id": request_id,
                    "status": "QUEUED",
                    "polling_url": f"{self.base}/v2/requests/status/{request_id}",
                },
            )
        if request.method == "GET" and request.path.startswith("/v2/requests/status/"):
            request_id = request.path.removeprefix("/v2/requests/status/")
            if request_id not in self.jobs:
                return _json(404, {"error": "Not Found", "message": "Unknown request"})
            created, _ = self.jobs[request_id]
            elapsed = time.monotonic() - created
            state: dict[str, Any] = {
                "request_id": request_id,
                "model_id": "xtts-v2-api",
                "error": None,
                "output": None,
            }
            if elapsed < self.processing_s / 2:
                state["status"] = "QUEUED"
            elif elapsed < self.processing_s:
                state["status"] = "PROCESSING"
            elif self.final_status == "COMPLETED":
                state.update(
                    status="COMPLETED",
                    output={
                        "media_url": [f"{self.base}/media/{request_id}.wav"],
                        "media_type": "application/octet-stream",
                    },
                )
            else:
                state.update(status=self.final_status, error="GPU worker crashed while generating")
            return _json(200, state)
        return _json(404, {"error": "Not Found", "message": "No such route"})


def data_uri_bytes(uri: str) -> bytes:
    """The payload of a base64 `data:` URI."""
    return base64.b64decode(uri.partition(",")[2])
