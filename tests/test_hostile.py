"""Random event sequences and random bytes thrown at a live server (hypothesis).

The server runs as a real process in proxy mode against the local Replicate fake, so every
example is cheap; after the examples it must still answer `describe`, and its memory must
not have grown past a bound.
"""

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import free_port, wait_for_port
from .support.clips import write_profile
from .support.fake_providers import REPLICATE_TOKEN, FakeReplicate

pytestmark = pytest.mark.slow  # hypothesis storms against a server process: ~16 s

MEMORY_GROWTH_LIMIT_MB = 150


def wire(event_type: str, data: object = None, payload: bytes = b"", **header: object) -> bytes:
    body = b"" if data is None else json.dumps(data).encode()
    fields = {"type": event_type, **header}
    if body:
        fields["data_length"] = len(body)
    if payload:
        fields["payload_length"] = len(payload)
    return json.dumps(fields).encode() + b"\n" + body + payload


names = st.one_of(
    st.just("alice"),
    st.text(max_size=12),
    st.just("../../etc/passwd"),
    st.just("alice@de"),
    st.just("a/b"),
    st.integers(),
    st.none(),
)
texts = st.one_of(
    st.text(max_size=60), st.integers(), st.none(), st.lists(st.text(max_size=5), max_size=3)
)
events = st.one_of(
    st.just(wire("ping")),
    st.just(wire("describe")),
    st.builds(lambda t, n: wire("synthesize", {"text": t, "voice": {"name": n}}), texts, names),
    st.builds(lambda n: wire("synthesize-start", {"voice": {"name": n}}), names),
    st.builds(lambda t: wire("synthesize-chunk", {"text": t}), texts),
    st.just(wire("synthesize-stop")),
    st.builds(
        lambda v: wire("synthesize", {"text": "Hello there, friend.", "voice": v}),
        st.one_of(st.text(max_size=5), st.integers()),
    ),
    st.builds(lambda p: wire("audio-chunk", {"rate": 1}, p), st.binary(max_size=64)),
    st.builds(lambda t: wire(t), st.text(max_size=20)),
    st.binary(max_size=80),
    st.just(b'{"type": "ping", "data_length": 999999999}\n'),
    st.just(b'{"type": "ping", "payload_length": "x"}\n'),
)


@pytest.fixture(scope="module")
def proxy_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, int]]:
    """(port, pid) of a proxy-mode server whose provider is the local fake."""
    root = tmp_path_factory.mktemp("hostile")
    write_profile(root / "voices", "alice", 'languages = ["en", "de"]\n')
    fake = FakeReplicate()
    fake.start()
    port = free_port()
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "wyoming_xtts", "--engine", "replicate"),
            *("--provider-url", f"{fake.base}/v1", "--voices-dir", str(root / "voices")),
            *("--data-dir", str(root / "data"), "--uri", f"tcp://127.0.0.1:{port}"),
        ],
        env={**os.environ, "REPLICATE_API_TOKEN": REPLICATE_TOKEN},
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port)
        yield port, process.pid
    finally:
        process.terminate()
        process.wait(timeout=30)
        fake.stop()


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


def _send(port: int, raw: bytes) -> None:
    """Send, then read whatever comes back for a moment; the server may close on us."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        try:
            connection.sendall(raw)
            connection.settimeout(0.15)
            while connection.recv(65536):
                pass
        except (TimeoutError, ConnectionError):
            pass


def _describe(port: int) -> dict:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as connection:
        connection.sendall(wire("describe"))
        stream = connection.makefile("rb")
        header = json.loads(stream.readline())
        assert header["type"] == "info"
        return json.loads(stream.read(header["data_length"]))


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(sequence=st.lists(events, min_size=1, max_size=12))
def test_random_events_and_bytes_never_take_the_server_down(
    proxy_server: tuple[int, int], sequence: list[bytes]
) -> None:
    port, _ = proxy_server

    _send(port, b"".join(sequence))

    assert _describe(port)["tts"][0]["voices"][0]["name"] == "alice"


def test_the_server_answers_and_stays_within_a_memory_bound_after_the_storm(
    proxy_server: tuple[int, int],
) -> None:
    port, pid = proxy_server
    _describe(port)
    before = _rss_mb(pid)
    for _ in range(30):
        _send(port, b'{"type": "audio-chunk", "payload_length": 5000000}\n' + bytes(5_000_000))
        _send(port, wire("synthesize", {"text": "x" * 10_000, "voice": {"name": "alice"}}))

    assert _describe(port)["tts"][0]["name"] == "wyoming-xtts"
    assert _rss_mb(pid) - before < MEMORY_GROWTH_LIMIT_MB
