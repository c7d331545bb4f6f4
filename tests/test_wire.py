"""Hostile bytes on the wire: bounded, answered, and the server keeps serving."""

import asyncio
import json

import pytest
from wyoming.event import Event, async_read_event

from .conftest import LiveServer


async def exchange(server: LiveServer, raw: bytes, then: bytes = b"") -> list[Event]:
    """Send raw bytes, then `then`; the events answered, up to the pong or a closed connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    writer.write(raw + then)
    await writer.drain()
    events: list[Event] = []
    try:
        while not events or events[-1].type != "pong":
            event = await asyncio.wait_for(async_read_event(reader), 30)
            if event is None:
                break
            events.append(event)
    finally:
        writer.close()
    return events


def header(event_type: str, **fields: object) -> bytes:
    return json.dumps({"type": event_type, **fields}).encode() + b"\n"


PING = header("ping", data={"text": "still there?"})


async def test_an_oversized_payload_is_refused_without_being_kept_and_the_connection_goes_on(
    live_server: LiveServer,
) -> None:
    size = 5 * 1024 * 1024
    events = await exchange(
        live_server, header("audio-chunk", payload_length=size) + bytes(size), PING
    )

    assert [event.type for event in events] == ["error", "pong"]
    assert events[0].data["code"] == "too-large"
    assert str(size) in events[0].data["text"]


async def test_oversized_data_is_refused_and_the_connection_goes_on(
    live_server: LiveServer,
) -> None:
    data = json.dumps({"text": "x" * 300_000}).encode()
    events = await exchange(live_server, header("transcript", data_length=len(data)) + data, PING)

    assert [event.type for event in events] == ["error", "pong"]
    assert events[0].data["code"] == "too-large"


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (header("synthesize", data_length=300_100) + b"x" * 300_100, "too-large"),
        (header("synthesize-start", data_length=300_100) + b"x" * 300_100, "too-large"),
        (header("synthesize", data_length=9) + b"not json!", "bad-request"),
        (header("synthesize", data_length=5) + b"[1,2]", "bad-request"),
    ],
    ids=["oversized synthesize", "oversized synthesize-start", "data not json", "not an object"],
)
async def test_a_refused_request_gets_its_error_then_the_connection_closes(
    live_server: LiveServer, raw: bytes, code: str
) -> None:
    # The client waits for an answer to its request: a closed connection ends that wait.
    events = await exchange(live_server, raw, PING)

    assert [event.type for event in events] == ["error"]
    assert events[0].data["code"] == code
    assert [event.type for event in await exchange(live_server, PING)] == ["pong"]


@pytest.mark.parametrize(
    "raw",
    [
        b"this is not json\n",
        b'{"type": "ping"\n',
        b'"just a string"\n',
        b'{"type": "ping", "data_length": "ten"}\n',
        b'{"type": "ping", "payload_length": -5}\n',
        b'{"type": "p\xffng"}\n',
    ],
    ids=[
        "not json",
        "truncated json",
        "not an object",
        "length not a number",
        "negative length",
        "invalid utf-8",
    ],
)
async def test_unparseable_headers_get_an_error_then_a_clean_close(
    live_server: LiveServer, raw: bytes
) -> None:
    events = await exchange(live_server, raw, PING)

    assert [event.type for event in events] == ["error"]
    assert events[0].data["code"] == "bad-request"
    assert [event.type for event in await exchange(live_server, PING)] == ["pong"]


@pytest.mark.parametrize(
    "raw",
    [
        header("describe", data_length=9) + b"not json!",
        header("describe", data_length=5) + b"[1,2]",
        header("", data={"text": "no type"}),
        json.dumps({"data": {"text": "no type"}}).encode() + b"\n",
    ],
    ids=["data not json", "data not an object", "empty type", "missing type"],
)
async def test_malformed_events_get_an_error_and_the_connection_goes_on(
    live_server: LiveServer, raw: bytes
) -> None:
    events = await exchange(live_server, raw, PING)

    assert [event.type for event in events] == ["error", "pong"]
    assert events[0].data["code"] == "bad-request"


async def test_a_header_line_past_the_reader_limit_closes_the_connection(
    live_server: LiveServer,
) -> None:
    events = await exchange(
        live_server, b'{"type": "ping", "pad": "' + b"x" * 100_000 + b'"}\n', PING
    )

    assert [event.type for event in events] == ["error"]
    assert [event.type for event in await exchange(live_server, PING)] == ["pong"]
