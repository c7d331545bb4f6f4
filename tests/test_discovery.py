"""mDNS announcement: Home Assistant finds the server by itself."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from zeroconf.asyncio import AsyncZeroconf

from wyoming_xtts.core.options import default_service_name
from wyoming_xtts.core.settings import parse_settings
from wyoming_xtts.doors.wyoming.discovery import SERVICE_TYPE, ZeroconfAnnouncer, advertised_host

from .conftest import free_port


async def lookup(name: str) -> tuple[int | None, list[str]] | None:
    browser = AsyncZeroconf(interfaces=["127.0.0.1"])
    try:
        info = await browser.async_get_service_info(
            SERVICE_TYPE, f"{name}.{SERVICE_TYPE}", timeout=3000
        )
    finally:
        await browser.async_close()
    return (info.port, info.parsed_addresses()) if info else None


@pytest.mark.slow
async def test_announced_server_is_found_by_a_browser_and_gone_after_close() -> None:
    announcer = ZeroconfAnnouncer("xtts-test-kitchen", "127.0.0.1", 10299, interfaces=["127.0.0.1"])
    await announcer.start()
    try:
        found = await lookup("xtts-test-kitchen")
    finally:
        await announcer.close()

    assert found == (10299, ["127.0.0.1"])
    assert await lookup("xtts-test-kitchen") is None


def test_a_server_on_all_interfaces_announces_a_reachable_address() -> None:
    host = advertised_host("0.0.0.0")

    assert host not in ("0.0.0.0", "")
    socket.inet_aton(host)  # a literal IPv4 address


def test_a_specific_bind_address_or_override_is_announced_as_is() -> None:
    assert advertised_host("192.168.1.20") == "192.168.1.20"
    assert advertised_host("0.0.0.0", "10.0.0.5") == "10.0.0.5"


def test_zeroconf_option_names_the_service_and_needs_tcp() -> None:
    assert parse_settings(["--zeroconf"], {}).zeroconf_name == default_service_name()
    assert parse_settings(["--zeroconf", "kitchen"], {}).zeroconf_name == "kitchen"
    assert parse_settings([], {"WYOMING_XTTS_ZEROCONF": "hall"}).zeroconf_name == "hall"
    assert parse_settings([], {}).zeroconf_name is None
    with pytest.raises(SystemExit):
        parse_settings(["--zeroconf", "--uri", "stdio://"], {})


def zeroconf_server(voices_dir: Path, port: int) -> subprocess.Popen[str]:
    """A proxy-mode server (no model to load) announcing itself as `xtts-test-process`."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "wyoming_xtts", "--engine", "replicate"),
            *("--voices-dir", str(voices_dir), "--uri", f"tcp://0.0.0.0:{port}"),
            *("--zeroconf", "xtts-test-process", "--zeroconf-host", "127.0.0.1"),
        ],
        env={**os.environ, "REPLICATE_API_TOKEN": "r8_unused"},
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.slow
async def test_the_server_started_with_zeroconf_is_discoverable(tmp_path: Path) -> None:
    port = free_port()
    process = zeroconf_server(tmp_path, port)
    try:
        found = None
        for _ in range(20):
            found = await lookup("xtts-test-process")
            if found or process.poll() is not None:
                break
    finally:
        process.terminate()
        _, stderr = process.communicate(timeout=30)

    assert found == (port, ["127.0.0.1"]), stderr
