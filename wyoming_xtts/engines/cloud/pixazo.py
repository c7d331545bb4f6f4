"""The Pixazo gateway's `xtts-v2` API: a queued request, then polling its status.

Pixazo fetches the reference clip itself, so a voice needs a public `speaker_url` in its
profile. The status is polled fast at first (a short sentence is done in seconds) and then
less often, instead of the 5-10 s the provider's page suggests, which a voice assistant
cannot afford. The output file lives on a public CDN and is fetched without the key.
"""

import asyncio
import logging
import time
from typing import Any

import httpx
import numpy as np

from ...core.audio import XTTS_OUTPUT_RATE
from ...core.errors import ErrorCode, SpeechError
from .engine import CloudJob
from .http import (
    PollSchedule,
    RetryPolicy,
    Secret,
    download_audio,
    error_for_response,
    failure_reason,
    json_object,
    send,
)

_LOGGER = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://gateway.pixazo.ai"
_GENERATE_PATH = "/voice-clone/v1/xtts-v2/generate"
_STATUS_PATH = "/v2/requests/status/"
_KEY_HEADER = "Ocp-Apim-Subscription-Key"
_POLLS = PollSchedule(backoff_s=(0.25, 0.25, 0.5, 0.5, 0.75, 1.0, 1.5), every_s=2.0)
_DONE, _FAILED = "COMPLETED", ("FAILED", "ERROR")


class PixazoProvider:
    """`CloudProvider` for Pixazo."""

    def __init__(self, base_url: str, secret: Secret, retry: RetryPolicy) -> None:
        self._base = base_url.rstrip("/")
        self._secret = secret
        self._retry = retry

    @property
    def name(self) -> str:
        return "Pixazo (xtts-v2)"

    @property
    def url(self) -> str:
        return "https://www.pixazo.ai/models/xtts"

    async def render(self, client: httpx.AsyncClient, job: CloudJob) -> np.ndarray:
        if not job.voice.speaker_url:
            raise SpeechError(
                ErrorCode.VOICE_UNUSABLE,
                f"Pixazo fetches the reference clip from a public URL and voice "
                f'{job.voice.name!r} has none: add speaker_url = "https://.../clip.wav" to '
                "its voice.toml.",
            )
        body = {
            "speaker": job.voice.speaker_url,
            "text": job.text,
            "language": job.language,
            "cleanup_voice": job.cleanup_voice,
        }
        response = await self._send(
            client, "POST", self._base + _GENERATE_PATH, idempotent=False, json=body
        )
        if response.status_code not in (200, 201, 202):
            raise error_for_response(self.name, response, self._secret)
        request_id = json_object(response, self.name).get("request_id")
        if not isinstance(request_id, str) or not request_id or "/" in request_id:
            raise SpeechError(
                ErrorCode.PROVIDER_UNAVAILABLE, f"{self.name} returned no request id."
            )

        status = await self._until_done(client, request_id)
        media = (
            (status.get("output") or {}).get("media_url")
            if isinstance(status.get("output"), dict)
            else None
        )
        url = media[0] if isinstance(media, list) and media else media
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SpeechError(ErrorCode.PROVIDER_BAD_AUDIO, f"{self.name} returned no audio URL.")
        return await download_audio(
            client,
            url,
            provider=self.name,
            secret=self._secret,
            headers={},
            policy=self._retry,
            sample_rate=XTTS_OUTPUT_RATE,
        )

    async def close(self) -> None:
        """Pixazo offers no way to cancel a queued request: nothing to wait for."""

    async def _until_done(self, client: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
        for polls, delay in enumerate(_POLLS.delays(time.monotonic()), start=1):
            await asyncio.sleep(delay)
            response = await self._send(
                client, "GET", self._base + _STATUS_PATH + request_id, idempotent=True
            )
            if response.status_code != 200:
                raise error_for_response(self.name, response, self._secret)
            status = json_object(response, self.name)
            state = status.get("status")
            if state == _DONE:
                _LOGGER.debug("Pixazo request %s done after %d polls", request_id, polls)
                return status
            if state in _FAILED:
                reason = failure_reason(self._secret, status.get("error"))
                raise SpeechError(
                    ErrorCode.PROVIDER_FAILED, f"{self.name}: the request {state} ({reason})."
                )
        raise AssertionError("the poll schedule never ends")  # pragma: no cover

    async def _send(
        self, client: httpx.AsyncClient, method: str, url: str, *, idempotent: bool, **kwargs: Any
    ) -> httpx.Response:
        headers = {_KEY_HEADER: self._secret.reveal(), "Cache-Control": "no-cache"}
        return await send(
            client,
            lambda: client.build_request(method, url, headers=headers, **kwargs),
            provider=self.name,
            secret=self._secret,
            idempotent=idempotent,
            policy=self._retry,
        )
