"""Reading Wyoming events off a socket with every size bounded.

The `wyoming` package's reader trusts the client: it reads as many `data_length` and
`payload_length` bytes as the header declares, and a wrong type in the header raises out of
the connection. A server on a home network without authentication cannot afford either, so
events are read here in the same wire format (a JSON header line, then optional data JSON and
payload bytes) with limits, and handed on as `wyoming.event.Event` objects.

A part that is too large is read and thrown away in small blocks, so the connection stays in
step with the client and remains usable. Bytes that do not parse as a header leave no way to
find the next event: the connection is then closed.
"""

import asyncio
import json
from dataclasses import dataclass
from typing import Any

from wyoming.event import Event

from ...core.errors import ErrorCode, SpeechError

_TYPE = "type"
_DATA = "data"
_DATA_LENGTH = "data_length"
_PAYLOAD_LENGTH = "payload_length"
_DISCARD_BLOCK = 64 * 1024


@dataclass(frozen=True)
class WireLimits:
    """Largest parts of one event a client may send."""

    data_bytes: int = 256 * 1024
    """JSON data of one event: a `synthesize` of 5000 characters is about 20 KB."""

    payload_bytes: int = 1024 * 1024
    """Binary payload of one event (a TTS server receives no audio; this is for odd clients)."""


class WireError(SpeechError):
    """An event that cannot be accepted; `resumable` when the next event can still be read."""

    def __init__(
        self, code: ErrorCode, message: str, resumable: bool, event_type: str | None = None
    ) -> None:
        super().__init__(code, message)
        self.resumable = resumable
        self.event_type = event_type
        """The refused event's type, when its header could be read."""


async def read_event(reader: asyncio.StreamReader, limits: WireLimits) -> Event | None:
    """The next event, or None at end of stream; raises `WireError`.

    The header line is bounded by the stream reader's own limit (64 KiB for servers started
    by `wyoming`).
    """
    try:
        line = await reader.readline()
    except ValueError:  # LimitOverrunError: a header line longer than the reader's limit
        raise WireError(ErrorCode.BAD_REQUEST, "An event header is too long.", False) from None
    if not line:
        return None
    if not line.endswith(b"\n"):
        return None  # the client went away in the middle of a header
    header = _parse_object(line, "event header", resumable=False)
    event_type = header.get(_TYPE)
    data_length = _length(header, _DATA_LENGTH)
    payload_length = _length(header, _PAYLOAD_LENGTH)
    data = header.get(_DATA) or {}

    too_large: str | None = None
    if data_length > limits.data_bytes:
        too_large = f"data of {data_length} bytes (the limit is {limits.data_bytes})"
        await _discard(reader, data_length)
    elif data_length:
        try:
            extra = _parse_object(await reader.readexactly(data_length), "event data", True)
        except WireError as err:
            err.event_type = event_type if isinstance(event_type, str) else None
            raise
        if not isinstance(data, dict):
            data = {}
        data = {**data, **extra}
    if payload_length > limits.payload_bytes:
        too_large = too_large or (
            f"a payload of {payload_length} bytes (the limit is {limits.payload_bytes})"
        )
        await _discard(reader, payload_length)
        payload = None
    else:
        payload = await reader.readexactly(payload_length) if payload_length else None

    if too_large:
        raise WireError(
            ErrorCode.TOO_LARGE,
            f"The event carries {too_large}.",
            True,
            event_type if isinstance(event_type, str) else None,
        )
    if not isinstance(event_type, str) or not event_type:
        raise WireError(ErrorCode.BAD_REQUEST, "An event has no 'type' string.", True)
    if not isinstance(data, dict):
        raise WireError(
            ErrorCode.BAD_REQUEST, f"The data of {event_type!r} is not an object.", True, event_type
        )
    return Event(type=event_type, data=data, payload=payload)


def _parse_object(raw: bytes, what: str, resumable: bool) -> dict[str, Any]:
    try:
        parsed = json.loads(raw)  # bytes: UTF-8 is checked here too
    except ValueError:
        raise WireError(
            ErrorCode.BAD_REQUEST, f"The {what} is not valid JSON.", resumable
        ) from None
    if not isinstance(parsed, dict):
        raise WireError(ErrorCode.BAD_REQUEST, f"The {what} is not a JSON object.", resumable)
    return parsed


def _length(header: dict[str, Any], key: str) -> int:
    value = header.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        # Without a length the next event cannot be found.
        raise WireError(ErrorCode.BAD_REQUEST, f"'{key}' must be a whole number.", False)
    return value


async def _discard(reader: asyncio.StreamReader, count: int) -> None:
    """Read and drop `count` bytes without holding more than one block."""
    while count > 0:
        block = await reader.read(min(count, _DISCARD_BLOCK))
        if not block:
            raise asyncio.IncompleteReadError(b"", count)
        count -= len(block)
