"""HTTP plumbing shared by the cloud providers: secrets, retries, error mapping, downloads
(checked for completeness and decoded).

Retries use tenacity. What is retried depends on whether repeating the request is safe:
polls and downloads (idempotent) are retried on 429, any 5xx and any transport error; a
request that creates work (a prediction) only when it certainly was not acted on: 429, 502,
503, 504, and failures to connect at all.
"""

import asyncio
import email.utils
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, stop_after_attempt

from ...core.audio import decode_audio
from ...core.engine import EngineUnavailableError
from ...core.errors import ErrorCode, SpeechError

_LOGGER = logging.getLogger(__name__)

MAX_AUDIO_BYTES = 50 * 1024 * 1024
"""Largest provider output accepted (a 30 s WAV is about 1.5 MB)."""

_AUDIO_DOWNLOADS = 2
"""An output that arrives incomplete is fetched once more."""
_GATEWAY_STATUSES = frozenset({429, 502, 503, 504})
_REASON_CHARS = 300
_THROTTLE_HINT = re.compile(r"resets in ~?(\d+)\s*s")


class Secret:
    """An API key that never shows itself in repr, str, logs or tracebacks."""

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The key itself, for the one header that needs it."""
        return self._value

    def redact(self, text: str) -> str:
        """`text` with every occurrence of the key masked."""
        return text.replace(self._value, "***") if self._value else text

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__


def load_secret(
    env_names: Sequence[str], key_file: Path | None, environ: Mapping[str, str] | None = None
) -> Secret:
    """The provider key from a file (e.g. a Docker secret) or the first set variable."""
    env = os.environ if environ is None else environ
    if key_file is not None:
        try:
            value = key_file.read_text(encoding="utf-8").strip()
        except OSError as err:
            raise EngineUnavailableError(
                f"The API key file {key_file} cannot be read ({err.strerror})."
            ) from None
        if not value:
            raise EngineUnavailableError(f"The API key file {key_file} is empty.")
        return Secret(value)
    for name in env_names:
        if env.get(name, "").strip():
            return Secret(env[name].strip())
    raise EngineUnavailableError(
        f"No API key: set {' or '.join(env_names)} in the environment, or pass --api-key-file."
    )


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently transient failures are retried."""

    attempts: int = 4
    """Tries in all, the first included."""

    first_delay_s: float = 0.5
    """Wait before the first retry; doubles each time."""

    max_delay_s: float = 8.0
    """Longest wait between tries (also caps a provider's Retry-After)."""


class _Transient(Exception):
    """A response worth retrying."""

    def __init__(self, response: httpx.Response) -> None:
        super().__init__(f"HTTP {response.status_code}")
        self.response = response


def _retry_after(response: httpx.Response) -> float | None:
    header = response.headers.get("retry-after")
    if header:
        if header.strip().isdigit():
            return float(header)
        try:
            when = email.utils.parsedate_to_datetime(header)
        except (TypeError, ValueError):
            return None
        return max(0.0, when.timestamp() - time.time())
    hint = _THROTTLE_HINT.search(response.text) if response.status_code == 429 else None
    return float(hint.group(1)) if hint else None


def _wait(policy: RetryPolicy) -> Callable[[RetryCallState], float]:
    def wait(state: RetryCallState) -> float:
        backoff = policy.first_delay_s * 2 ** (state.attempt_number - 1)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, _Transient):
            hinted = _retry_after(error.response)
            if hinted is not None:
                backoff = hinted
        return float(min(backoff, policy.max_delay_s))

    return wait


def _transient(idempotent: bool) -> Callable[[BaseException], bool]:
    def check(error: BaseException) -> bool:
        if isinstance(error, _Transient):
            status = error.response.status_code
            return idempotent or status in _GATEWAY_STATUSES
        if isinstance(error, (httpx.ConnectError, httpx.ConnectTimeout)):
            return True
        return idempotent and isinstance(error, httpx.TransportError)

    return check


async def send(
    client: httpx.AsyncClient,
    build: Callable[[], httpx.Request],
    *,
    provider: str,
    secret: Secret,
    idempotent: bool,
    policy: RetryPolicy,
    stream: bool = False,
) -> httpx.Response:
    """Send a request, retrying transient failures; raise `SpeechError` when they persist.

    Returns any response that is not a 429 or 5xx: the caller judges 2xx and 4xx. With
    `stream`, the body is left unread and the caller must close the response.
    """

    def log_retry(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        _LOGGER.warning(
            "%s: %s; retrying (attempt %d)", provider, _describe(error), state.attempt_number + 1
        )

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts),
        wait=_wait(policy),
        retry=retry_if_exception(_transient(idempotent)),
        before_sleep=log_retry,
        reraise=True,
    )
    try:
        async for attempt in retrying:
            with attempt:
                response = await client.send(build(), stream=stream)
                if response.status_code == 429 or response.status_code >= 500:
                    await response.aread()
                    await response.aclose()
                    raise _Transient(response)
                return response
    except _Transient as final:
        raise error_for_response(provider, final.response, secret) from None
    except httpx.TransportError as err:
        raise SpeechError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            f"{provider} could not be reached ({_describe(err)}).",
        ) from None
    raise AssertionError("unreachable: tenacity either returns or raises")


def _describe(error: BaseException | None) -> str:
    if isinstance(error, _Transient):
        return f"HTTP {error.response.status_code}"
    return type(error).__name__ if error else "unknown error"


@dataclass(frozen=True)
class PollSchedule:
    """When to ask a provider again whether a job is done."""

    backoff_s: tuple[float, ...]
    """Delays before the first polls (after any fine window), growing."""

    every_s: float
    """Delay between polls after those."""

    fine_window_s: float = 0.0
    """Poll every `fine_s` while the job is younger than this (a warm model finishing soon)."""

    fine_s: float = 0.25
    """Delay between polls within the fine window."""

    def delays(self, started: float) -> Iterator[float]:
        """Delays before each poll of a job created at `started` (time.monotonic())."""
        while time.monotonic() - started < self.fine_window_s:
            yield self.fine_s
        yield from self.backoff_s
        while True:
            yield self.every_s


def failure_reason(secret: Secret, error: object) -> str:
    """A provider's own words for a failed job, for an error message: secrets masked, bounded."""
    return secret.redact(str(error or "no reason given"))[:_REASON_CHARS]


def provider_reason(response: httpx.Response, secret: Secret) -> str:
    """The provider's own explanation from an error body (problem+json or gateway JSON)."""
    try:
        body = response.json()
    except ValueError:
        body = None
    parts: list[str] = []
    if isinstance(body, dict):
        for key in ("detail", "message", "error", "title"):
            value = body.get(key)
            if isinstance(value, str) and value.strip() and value not in parts:
                parts.append(value.strip())
        invalid = body.get("invalid_fields")
        if isinstance(invalid, list) and invalid:
            parts.append("invalid: " + "; ".join(str(field) for field in invalid))
    elif response.text.strip():
        parts.append(response.text.strip())
    reason = secret.redact(" - ".join(parts))
    return reason[:_REASON_CHARS] or f"HTTP {response.status_code}"


def error_for_response(provider: str, response: httpx.Response, secret: Secret) -> SpeechError:
    """The client-facing error for a non-2xx provider answer."""
    status = response.status_code
    reason = provider_reason(response, secret)
    if status in (401, 403):
        return SpeechError(
            ErrorCode.PROVIDER_AUTH,
            f"{provider} refused the API key (HTTP {status}: {reason}); check the key.",
        )
    if status == 402:
        return SpeechError(
            ErrorCode.PROVIDER_BALANCE, f"{provider} account has no credit left ({reason})."
        )
    if status == 429:
        return SpeechError(
            ErrorCode.PROVIDER_THROTTLED,
            f"{provider} is throttling requests and kept doing so after retries ({reason}).",
        )
    if status >= 500:
        return SpeechError(
            ErrorCode.PROVIDER_UNAVAILABLE,
            f"{provider} failed with HTTP {status} after retries ({reason}).",
        )
    return SpeechError(
        ErrorCode.PROVIDER_REJECTED, f"{provider} rejected the request (HTTP {status}: {reason})."
    )


async def download_audio(
    client: httpx.AsyncClient,
    url: str,
    *,
    provider: str,
    secret: Secret,
    headers: Mapping[str, str],
    policy: RetryPolicy,
    sample_rate: int,
) -> np.ndarray:
    """Fetch an output file and decode it (mono float32 at `sample_rate`).

    A download that arrives incomplete (the connection cut before Content-Length, a file cut
    short or not decodable) is fetched once more, then reported as `provider-bad-audio`:
    the listener must never hear half a sentence as if it were whole.
    """
    problem = ""
    for attempt in range(1, _AUDIO_DOWNLOADS + 1):
        data, problem = await _fetch(client, url, provider, secret, headers, policy)
        if not problem:
            try:
                return await asyncio.to_thread(decode_audio, data, sample_rate)
            except ValueError as err:
                problem = str(err)
        if attempt < _AUDIO_DOWNLOADS:
            _LOGGER.warning(
                "%s: the audio download was unusable (%s); fetching it again", provider, problem
            )
    raise SpeechError(
        ErrorCode.PROVIDER_BAD_AUDIO,
        f"{provider} returned unusable audio twice: {problem}.",
    )


def decode_output(data: bytes, provider: str, sample_rate: int) -> np.ndarray:
    """Decode audio a provider sent inline (nothing to fetch again)."""
    try:
        return decode_audio(data, sample_rate)
    except ValueError as err:
        raise SpeechError(
            ErrorCode.PROVIDER_BAD_AUDIO, f"{provider} returned unusable audio: {err}."
        ) from None


async def _fetch(
    client: httpx.AsyncClient,
    url: str,
    provider: str,
    secret: Secret,
    headers: Mapping[str, str],
    policy: RetryPolicy,
) -> tuple[bytes, str]:
    """The body (at most `MAX_AUDIO_BYTES`) and, if it arrived incomplete, why."""
    response = await send(
        client,
        lambda: client.build_request("GET", url, headers=dict(headers)),
        provider=provider,
        secret=secret,
        idempotent=True,
        policy=policy,
        stream=True,
    )
    body = bytearray()
    try:
        if response.status_code != 200:
            await response.aread()
            raise error_for_response(provider, response, secret)
        async for block in response.aiter_bytes():
            body += block
            if len(body) > MAX_AUDIO_BYTES:
                raise SpeechError(
                    ErrorCode.PROVIDER_BAD_AUDIO,
                    f"{provider} returned more than the {MAX_AUDIO_BYTES} bytes of audio accepted.",
                )
    except httpx.TransportError as err:
        return bytes(body), f"the download broke off after {len(body)} bytes ({_describe(err)})"
    finally:
        await response.aclose()
    declared = response.headers.get("content-length")
    encoded = response.headers.get("content-encoding", "identity") != "identity"
    if (
        declared is not None
        and declared.isdigit()
        and not encoded
        and response.num_bytes_downloaded < int(declared)
    ):
        return bytes(
            body
        ), f"{response.num_bytes_downloaded} of the {declared} bytes announced arrived"
    return bytes(body), ""


def json_object(response: httpx.Response, provider: str) -> dict[str, Any]:
    """The JSON object a provider answered with; anything else is a provider fault."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise SpeechError(
            ErrorCode.PROVIDER_UNAVAILABLE, f"{provider} answered with something other than JSON."
        )
    return body


def same_origin(url: str, base_url: str) -> bool:
    """True when `url` is on the scheme/host/port of `base_url` (safe to send the key to)."""
    first, second = httpx.URL(url), httpx.URL(base_url)
    return (first.scheme, first.host, first.port) == (second.scheme, second.host, second.port)
