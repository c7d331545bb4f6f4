"""Replicate's `lucataco/xtts-v2` through the predictions API (https://api.replicate.com/v1).

A prediction is created with `Prefer: wait=10`, which holds the request open until it
finishes (a sentence takes a few seconds on a warm model); if it has not (cold start) it is
polled, quickly at first. The wait is kept short because a prediction can only be canceled
once its id is known: a client that leaves during the wait costs at most that one prediction. The reference clip goes
as a `data:` URI when its Ogg encoding is small, else it is uploaded once through the files
API and the upload reused until it nears expiry. Output files need the token, and are
fetched at once (Replicate deletes API prediction data after about an hour).
"""

import asyncio
import base64
import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
import numpy as np

from ...core.audio import XTTS_OUTPUT_RATE, encode_reference
from ...core.errors import ErrorCode, SpeechError
from ...core.voices import Voice
from .engine import CloudJob
from .http import (
    PollSchedule,
    RetryPolicy,
    Secret,
    decode_output,
    download_audio,
    error_for_response,
    failure_reason,
    json_object,
    same_origin,
    send,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.replicate.com/v1"
MODEL = "lucataco/xtts-v2"
DEFAULT_VERSION = "684bc3855b37866c0c65add2ff39c78f3dea3f4ff103a436465326e0f438d55e"
"""The pinned model version (override with --replicate-version)."""

DATA_URI_LIMIT = 256 * 1024
"""Largest `data:` URI sent; Replicate documents data URIs for small files only."""

REFERENCE_SECONDS = 30.0
"""Reference audio sent at most (XTTS-v2 conditions on 30 s)."""

UPLOAD_REUSE_MARGIN_S = 3600.0
"""An uploaded reference is re-uploaded this long before Replicate expires it."""

CREATE_WAIT_S = 4
"""`Prefer: wait` seconds on create (Replicate allows 1-60). A prediction can only be canceled
once the create has answered with its id, so a client that hangs up during the wait is
canceled at most this long after (+ one round trip): kept under the 5 s promised."""

_TRUSTED_OUTPUT_HOSTS = ("replicate.delivery",)
_POLLS = PollSchedule(backoff_s=(0.5, 0.75, 1.0, 1.5), every_s=2.0, fine_window_s=15.0)
"""A prediction that outlasts the create's short wait is polled every 0.25 s until it is 15 s
old (a warm model finishes by then), then ever less often (a cold start takes minutes)."""
_TERMINAL = {"succeeded", "failed", "canceled"}
_CANCEL_GRACE_S = 5.0


@dataclass(frozen=True)
class _Upload:
    url: str
    reuse_until: float


class ReplicateProvider:
    """`CloudProvider` for Replicate."""

    def __init__(
        self,
        base_url: str,
        secret: Secret,
        version: str,
        retry: RetryPolicy,
        data_uri_limit: int = DATA_URI_LIMIT,
        create_wait_s: int = CREATE_WAIT_S,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._create_wait_s = create_wait_s
        self._data_uri_limit = data_uri_limit
        self._secret = secret
        self._version = version
        self._retry = retry
        self._references: dict[tuple[Any, ...], str] = {}
        self._uploads: dict[str, _Upload] = {}
        self._cleanups: set[asyncio.Task[None]] = set()

    @property
    def name(self) -> str:
        return f"Replicate ({MODEL})"

    @property
    def url(self) -> str:
        return f"https://replicate.com/{MODEL}"

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._secret.reveal()}"}

    async def render(self, client: httpx.AsyncClient, job: CloudJob) -> np.ndarray:
        speaker = await self._speaker(client, job.voice)
        body = {
            "version": self._version,
            "input": {
                "text": job.text,
                "speaker": speaker,
                "language": job.language,
                "cleanup_voice": job.cleanup_voice,
            },
        }
        created = time.monotonic()
        create = asyncio.ensure_future(
            self._send(
                client,
                "POST",
                f"{self._base}/predictions",
                idempotent=False,
                json=body,
                headers={"Prefer": f"wait={self._create_wait_s}"},
            )
        )
        try:
            # Shielded: abandoning the create would leave a prediction running with no id
            # to cancel it by.
            response = await asyncio.shield(create)
        except asyncio.CancelledError:
            self._cancel_when_created(client, create)
            raise
        if response.status_code not in (200, 201, 202):
            raise error_for_response(self.name, response, self._secret)
        prediction = json_object(response, self.name)
        try:
            prediction = await self._until_done(client, prediction, created)
        except asyncio.CancelledError:
            self._cancel_later(client, prediction)
            raise
        return await self._fetch_output(client, prediction)

    async def close(self) -> None:
        if self._cleanups:
            await asyncio.wait(self._cleanups, timeout=_CANCEL_GRACE_S)

    # -- prediction life cycle ------------------------------------------------------------

    async def _until_done(
        self, client: httpx.AsyncClient, prediction: dict[str, Any], created: float
    ) -> dict[str, Any]:
        polls = 0
        delays = _POLLS.delays(created)
        while prediction.get("status") not in _TERMINAL:
            await asyncio.sleep(next(delays))
            polls += 1
            response = await self._send(
                client, "GET", self._prediction_url(prediction), idempotent=True
            )
            if response.status_code != 200:
                raise error_for_response(self.name, response, self._secret)
            prediction = json_object(response, self.name)
        _LOGGER.debug(
            "Replicate prediction %s %s after %d polls",
            prediction.get("id"),
            prediction.get("status"),
            polls,
        )
        return prediction

    def _prediction_url(self, prediction: dict[str, Any]) -> str:
        urls = prediction.get("urls") or {}
        url = urls.get("get") if isinstance(urls, dict) else None
        if isinstance(url, str) and same_origin(url, self._base):
            return url
        return f"{self._base}/predictions/{prediction.get('id')}"

    def _cancel_when_created(
        self, client: httpx.AsyncClient, create: "asyncio.Future[httpx.Response]"
    ) -> None:
        """Let an abandoned create answer (within the wait), then cancel what it created."""

        async def cancel() -> None:
            try:
                response = await create
                if response.status_code in (200, 201, 202):
                    await self._cancel(client, json_object(response, self.name))
            except (httpx.HTTPError, SpeechError, RuntimeError):
                pass  # nothing was created, or it cannot be known

        self._track(asyncio.create_task(cancel()))

    def _cancel_later(self, client: httpx.AsyncClient, prediction: dict[str, Any]) -> None:
        """Cancel on Replicate's side without holding up the cancelled caller."""
        self._track(asyncio.create_task(self._cancel(client, prediction)))

    def _track(self, task: "asyncio.Task[None]") -> None:
        self._cleanups.add(task)
        task.add_done_callback(self._cleanups.discard)

    async def _cancel(self, client: httpx.AsyncClient, prediction: dict[str, Any]) -> None:
        prediction_id = prediction.get("id")
        if not prediction_id or prediction.get("status") in _TERMINAL:
            return
        try:
            await client.post(
                f"{self._base}/predictions/{prediction_id}/cancel", headers=self._auth()
            )
            _LOGGER.debug("Canceled Replicate prediction %s", prediction_id)
        except (httpx.HTTPError, RuntimeError) as err:
            # RuntimeError: the HTTP client was closed by a shutdown under way.
            _LOGGER.warning(
                "Could not cancel Replicate prediction %s: %s", prediction_id, type(err).__name__
            )

    async def _fetch_output(
        self, client: httpx.AsyncClient, prediction: dict[str, Any]
    ) -> np.ndarray:
        status = prediction.get("status")
        if status != "succeeded":
            reason = failure_reason(self._secret, prediction.get("error"))
            raise SpeechError(
                ErrorCode.PROVIDER_FAILED, f"{self.name}: the prediction {status} ({reason})."
            )
        output = prediction.get("output")
        if isinstance(output, list):
            output = output[0] if output else None
        if not isinstance(output, str) or not output.startswith(("http://", "https://", "data:")):
            raise SpeechError(ErrorCode.PROVIDER_BAD_AUDIO, f"{self.name} returned no audio URL.")
        if output.startswith("data:"):
            data = _decode_data_uri(output, self.name)
            return await asyncio.to_thread(decode_output, data, self.name, XTTS_OUTPUT_RATE)
        return await download_audio(
            client,
            output,
            provider=self.name,
            secret=self._secret,
            headers=self._auth() if self._trusted(output) else {},
            policy=self._retry,
            sample_rate=XTTS_OUTPUT_RATE,
        )

    def _trusted(self, url: str) -> bool:
        host = httpx.URL(url).host
        return same_origin(url, self._base) or any(
            host == trusted or host.endswith("." + trusted) for trusted in _TRUSTED_OUTPUT_HOSTS
        )

    # -- the reference clip ---------------------------------------------------------------

    async def _speaker(self, client: httpx.AsyncClient, voice: Voice) -> str:
        if voice.speaker_url:
            return voice.speaker_url
        stats = [(clip, clip.stat()) for clip in voice.clips]
        signature = tuple((str(clip), stat.st_size, stat.st_mtime_ns) for clip, stat in stats)
        data_uri = self._references.get(signature)
        if data_uri is None:
            reference = await asyncio.to_thread(encode_reference, voice.clips, REFERENCE_SECONDS)
            data_uri = "data:audio/ogg;base64," + base64.b64encode(reference).decode("ascii")
            self._references[signature] = data_uri
        if len(data_uri) <= self._data_uri_limit:
            return data_uri
        return await self._uploaded(client, data_uri)

    async def _uploaded(self, client: httpx.AsyncClient, data_uri: str) -> str:
        digest = hashlib.sha256(data_uri.encode()).hexdigest()
        upload = self._uploads.get(digest)
        if upload is not None and upload.reuse_until > time.time():
            return upload.url
        reference = base64.b64decode(data_uri.partition(",")[2])
        response = await self._send(
            client,
            "POST",
            f"{self._base}/files",
            idempotent=False,
            files={"content": (f"{digest[:16]}.ogg", reference, "audio/ogg")},
        )
        if response.status_code not in (200, 201):
            raise error_for_response(self.name, response, self._secret)
        body = json_object(response, self.name)
        urls = body.get("urls") or {}
        url = urls.get("get") if isinstance(urls, dict) else None
        if not isinstance(url, str):
            raise SpeechError(
                ErrorCode.PROVIDER_REJECTED, f"{self.name}: the file upload returned no URL."
            )
        expires = _timestamp(body.get("expires_at")) or time.time() + 24 * 3600
        self._uploads[digest] = _Upload(url, expires - UPLOAD_REUSE_MARGIN_S)
        return url

    async def _send(
        self,
        client: httpx.AsyncClient,
        method: str,
        url: str,
        *,
        idempotent: bool,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx.Response:
        all_headers = {**self._auth(), **(headers or {})}
        return await send(
            client,
            lambda: client.build_request(method, url, headers=all_headers, **kwargs),
            provider=self.name,
            secret=self._secret,
            idempotent=idempotent,
            policy=self._retry,
        )


def _decode_data_uri(uri: str, provider: str) -> bytes:
    try:
        return base64.b64decode(uri.partition(",")[2], validate=True)
    except ValueError:
        raise SpeechError(
            ErrorCode.PROVIDER_BAD_AUDIO, f"{provider} returned a malformed data URI."
        ) from None


def _timestamp(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None
