"""Build the container images here and run what they contain (`script/container-check`).

These machines cannot pull base images and refuse `podman run` (it cannot raise resource
limits), but they can build: so a Debian base image is made from Debian's own packages
(debootstrap, `podman import`), the project's Dockerfile and the add-on's are built on it with
`podman build --isolation chroot`, and each built image's filesystem is exported and run with
`chroot --userspec=1000:1000`, with the image's own environment, entry point and health check.
Checked for each image: the server starts as the non-root user and serves on its port, the
image's HEALTHCHECK command passes, /voices can be read-only and /data is written; the local
flavour speaks with the test checkpoint mounted in, the proxy flavour through a local stand-in
for Replicate, and the add-on's run.sh maps its options and announces the service.

Needs root, podman and debootstrap (`apt-get install podman debootstrap`). Not a pytest module:
it builds several GB of images; `.ci/run` runs it after the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx
from wyoming.audio import AudioChunk, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.tts import Synthesize, SynthesizeVoice

from tests.support.fake_providers import REPLICATE_TOKEN, FakeReplicate

REPO = Path(__file__).resolve().parents[2]
ADDON = REPO / "homeassistant-addon"
BASE_IMAGE = "localhost/wyoming-xtts-base:bookworm"
IMAGES = {
    "proxy": "localhost/wyoming-xtts:proxy",
    "local": "localhost/wyoming-xtts:local",
    "addon": "localhost/wyoming-xtts-addon:check",
}
CONTAINER_STORAGE = "/var/lib/containers"
"""Where podman keeps images as root (on the same disk as its /var/tmp). A build of the local
flavour needs about 25 GB free there at its peak: its 6.5 GB layer as pip wrote it, about
twice that in /var/tmp while podman commits it, and the committed copy."""
SERVER_PORT = 10200
INGRESS_PORT = 8099  # homeassistant-addon/config.yaml ingress_port
"""The port every image's configuration listens on (checked as shipped, not overridden)."""
STARTUP_TIMEOUT_S = 300.0
DOCKER_STOP_TIMEOUT_S = 10.0
"""`docker stop` sends SIGKILL after this long; the server must have exited by then."""
USER_ID = 1000


@dataclass
class Report:
    """What the check measured, printed at the end."""

    seconds: dict[str, float] = field(default_factory=dict)
    sizes: dict[str, str] = field(default_factory=dict)
    least_free_gb: float = float("inf")
    """Free disk before the emptiest build: what a build of the local flavour had to spare."""

    def note_free_disk(self) -> None:
        free_gb = shutil.disk_usage(CONTAINER_STORAGE).free / 1e9
        print(f"container-check: {free_gb:.1f} GB free before the build")
        self.least_free_gb = min(self.least_free_gb, free_gb)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--only",
        choices=("proxy", "local", "addon"),
        action="append",
        help="check only these images (default: all three)",
    )
    parser.add_argument(
        "--keep-images",
        action="store_true",
        help="keep each image once checked (by default it is removed before the next build:"
        " two local-flavour images and a build's copy do not fit every CI machine's disk)",
    )
    arguments = parser.parse_args(argv)
    only = arguments.only or ["proxy", "local", "addon"]
    report = Report()

    remove_images(IMAGES.values())  # an interrupted run's, which would hold their disk
    with timed(report, "base image (debootstrap + import)"):
        ensure_base_image()
    if "proxy" in only:
        with timed(report, "build proxy"):
            build(report, IMAGES["proxy"], REPO, {"FLAVOUR": "proxy"})
        with timed(report, "run proxy"):
            check_proxy_image(IMAGES["proxy"])
        _done_with(IMAGES["proxy"], arguments.keep_images)
    if "local" in only:
        with timed(report, "build local"):
            build(report, IMAGES["local"], REPO, {"FLAVOUR": "local"})
        with timed(report, "run local"):
            check_local_image(IMAGES["local"])
        _done_with(IMAGES["local"], arguments.keep_images)
    if "addon" in only:
        with timed(report, "build add-on"):
            build_addon(report, IMAGES["addon"])
        with timed(report, "run add-on"):
            check_addon_image(IMAGES["addon"])
        _done_with(IMAGES["addon"], arguments.keep_images)

    for name, seconds in report.seconds.items():
        print(f"container-check: {name}: {seconds:.0f} s")
    for image, size in report.sizes.items():
        print(f"container-check: {image}: {size}")
    print(f"container-check: least free disk before a build: {report.least_free_gb:.1f} GB")
    print("container-check: all images passed")
    return 0


# -- images -------------------------------------------------------------------------------


def ensure_base_image() -> None:
    """A Debian bookworm image with python3 and venv, from Debian's packages (once)."""
    if podman("image", "exists", BASE_IMAGE, check=False).returncode == 0:
        return
    with tempfile.TemporaryDirectory(prefix="base-", dir=_scratch()) as scratch:
        rootfs = Path(scratch) / "rootfs"
        subprocess.run(
            ["debootstrap", "--variant=minbase", "--include=python3,python3-venv,ca-certificates"]
            + ["bookworm", str(rootfs), "http://deb.debian.org/debian"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        # A TLS-inspecting proxy between this machine and the registry signs with its own CA:
        # the image must trust what the machine building it trusts.
        extra_cas = sorted(Path("/usr/local/share/ca-certificates").glob("*.crt"))
        for certificate in extra_cas:
            shutil.copy(certificate, rootfs / "usr/local/share/ca-certificates")
        if extra_cas:
            subprocess.run(
                ["chroot", str(rootfs), "update-ca-certificates"],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        archive = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        podman("import", "-", BASE_IMAGE, stdin=archive.stdout)
        archive.wait()


def build(report: Report, tag: str, context: Path, build_args: dict[str, str]) -> None:
    report.note_free_disk()
    arguments = ["build", "--isolation", "chroot", "--format", "docker", "--tag", tag]
    arguments += ["--build-arg", f"BASE_IMAGE={BASE_IMAGE}"]
    for name, value in build_args.items():
        arguments += ["--build-arg", f"{name}={value}"]
    podman(*arguments, str(context), quiet=True)
    size = podman("image", "inspect", tag, "--format", "{{.Size}}").stdout.strip()
    report.sizes[tag] = f"{int(size) / 1e9:.2f} GB"


def build_addon(report: Report, tag: str) -> None:
    """Build the add-on as Home Assistant's builder would, its base from build.yaml's key."""
    subprocess.run([str(REPO / "script" / "addon-bundle")], check=True)
    build_from = _build_yaml_base()
    print(f"container-check: add-on base in build.yaml: {build_from}; building on {BASE_IMAGE}")
    report.note_free_disk()
    arguments = ["build", "--isolation", "chroot", "--format", "docker", "--tag", tag]
    arguments += ["--build-arg", f"BUILD_FROM={BASE_IMAGE}", "--build-arg", "BUILD_ARCH=amd64"]
    arguments += ["--build-arg", f"FLAVOUR={_build_yaml_args()['FLAVOUR']}"]
    podman(*arguments, str(ADDON), quiet=True)
    size = podman("image", "inspect", tag, "--format", "{{.Size}}").stdout.strip()
    report.sizes[tag] = f"{int(size) / 1e9:.2f} GB"


def remove_images(tags: Iterable[str]) -> None:
    """Remove these images if present, and the untagged layers earlier builds left behind."""
    for tag in tags:
        if podman("image", "exists", tag, check=False).returncode == 0:
            podman("rmi", "--force", tag, quiet=True)
    podman("image", "prune", "--force", quiet=True)


def _done_with(tag: str, keep: bool) -> None:
    if not keep:
        remove_images([tag])


# -- running an image's filesystem --------------------------------------------------------


@dataclass
class Running:
    """An image's entry point running in a chroot of its exported filesystem."""

    rootfs: Path
    process: subprocess.Popen[bytes]
    environment: dict[str, str]
    config: dict[str, object]
    user_id: int

    def run(self, command: Sequence[str]) -> subprocess.CompletedProcess[str]:
        """Another command inside the image, as its user, with its environment."""
        return subprocess.run(
            ["chroot", f"--userspec={self.user_id}:{self.user_id}", str(self.rootfs), *command],
            env=self.environment,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    def health(self) -> subprocess.CompletedProcess[str]:
        """The image's HEALTHCHECK command (add-ons have none: the same command, by name)."""
        healthcheck = self.config["Healthcheck"]
        if healthcheck is None and self.user_id == 0:
            return self.run(["wyoming-xtts", "health"])
        assert isinstance(healthcheck, dict), "the image has no HEALTHCHECK"
        test = healthcheck["Test"]
        assert test[0] == "CMD", test
        return self.run(test[1:])


@contextlib.contextmanager
def running_image(
    image: str,
    arguments: Sequence[str] = (),
    environment: dict[str, str] | None = None,
    files: dict[str, Path] | None = None,
    command: Sequence[str] | None = None,
    user_id: int = USER_ID,
    voices_at: str = "/voices",
    voices_writable: bool = False,
) -> Iterator[Running]:
    """Mount `image`, mount what a container runtime would, start its entry point."""
    inspected = json.loads(podman("image", "inspect", image).stdout)[0]
    config = {**inspected["Config"], "Healthcheck": inspected.get("Healthcheck")}
    if user_id == USER_ID:
        assert config["User"] in ("xtts", str(USER_ID)), f"{image} runs as {config['User']!r}"
    # The container's own overlay mount, not an exported copy: a copy of the local image
    # is another 6.5 GB of disk, which CI machines do not always have.
    container = podman("create", image).stdout.strip()
    try:
        rootfs = Path(podman("mount", container).stdout.strip())
        for source, target in (files or {}).items():
            destination = rootfs / target.relative_to("/")
            destination.parent.mkdir(parents=True, exist_ok=True)
            if Path(source).is_dir():
                shutil.copytree(source, destination)
            else:
                shutil.copy(source, destination)
        voices = REPO / "voices"
        if voices_writable:  # as the add-on's /share: a copy, never the repository's own
            copy = Path(tempfile.mkdtemp(prefix="voices-", dir=_scratch()))
            voices = shutil.copytree(voices, copy / "voices")
        mounts = [
            (["-t", "proc", "proc"], "proc"),
            (["--rbind", "/dev"], "dev"),
            (["--rbind", "/sys"], "sys"),
            # Voices as users mount them: read-only (Docker), or the add-on's writable /share.
            (["--bind", str(voices)], voices_at.lstrip("/")),
        ]
        (rootfs / voices_at.lstrip("/")).mkdir(parents=True, exist_ok=True)
        mounted = []
        try:
            for options, mount_point in mounts:
                subprocess.run(["mount", *options, str(rootfs / mount_point)], check=True)
                mounted.append(rootfs / mount_point)
            if not voices_writable:
                subprocess.run(
                    ["mount", "-o", "remount,bind,ro", str(rootfs / voices_at.lstrip("/"))],
                    check=True,
                )
            env = dict(item.split("=", 1) for item in config.get("Env") or [])
            env.update({"HOME": "/home/xtts"}, **(environment or {}))
            process = subprocess.Popen(
                ["chroot", f"--userspec={user_id}:{user_id}", str(rootfs)]
                + list(command or [*config["Entrypoint"], *(config.get("Cmd") or [])])
                + list(arguments),
                env=env,
                start_new_session=True,
            )
            try:
                yield Running(rootfs, process, env, config, user_id)
            finally:
                _stop(process)
        finally:
            for target in reversed(mounted):
                subprocess.run(["umount", "--recursive", "--lazy", str(target)], check=False)
            if voices_writable:
                shutil.rmtree(voices.parent, ignore_errors=True)
    finally:
        podman("umount", container, quiet=True, check=False)
        podman("rm", "--force", container, quiet=True, check=False)


def wait_healthy(running: Running) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while True:
        if running.process.poll() is not None:
            raise AssertionError(f"the server exited with status {running.process.returncode}")
        result = running.health()
        if result.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"HEALTHCHECK still failing: {result.stdout}{result.stderr}")
        time.sleep(1)


def server_user_ids(running: Running) -> set[int]:
    """Real, effective, saved and file-system user ids of the server process."""
    status = Path(f"/proc/{running.process.pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("Uid:"))
    return {int(value) for value in line.split()[1:]}


# -- the checks ---------------------------------------------------------------------------


def check_proxy_image(image: str) -> None:
    replicate = FakeReplicate().start()
    try:
        with running_image(
            image,
            ["--engine", "replicate", "--provider-url", f"{replicate.base}/v1"],
            {"REPLICATE_API_TOKEN": REPLICATE_TOKEN},
        ) as running:
            _check_common(running)
            audio = speak("Sentence 1 of the proxy image.", "example")
            assert audio > 0, "no audio from the proxy image"
            assert replicate.calls("POST", "/v1/predictions"), "the provider was never asked"
            torch = running.run(["/opt/wyoming-xtts/bin/python", "-c", "import torch"])
            assert torch.returncode != 0, "the proxy image must not contain torch"
            took = check_stop(running, replicate)
    finally:
        replicate.stop()
    print(
        f"container-check: {image}: serves, speaks through the provider, no torch; "
        f"stopped with a reply in flight, heard whole, in {took:.1f} s"
    )


def check_local_image(image: str) -> None:
    from tests.support.xtts_checkpoint import build_checkpoint

    with tempfile.TemporaryDirectory(prefix="checkpoint-", dir=_scratch()) as scratch:
        checkpoint = build_checkpoint(Path(scratch) / "XTTS-v2", pickled_config=True)
        # Owned by root, so read-only for the server: the release's model.pth must be copied.
        with running_image(
            image, ["--model-dir", "/model"], files={str(checkpoint): Path("/model")}
        ) as running:
            _check_common(running)
            audio = speak("The washing machine is done.", "example")
            assert audio > 0, "no audio from the local image"
            written = [
                path
                for path in (running.rootfs / "data").rglob("*")
                if path.is_file() and path.stat().st_uid == USER_ID
            ]
            assert any("latents" in path.parts for path in written), "no latents cached in /data"
            took = check_stop(running)
    print(
        f"container-check: {image}: loads the mounted checkpoint, speaks, caches in /data; "
        f"stopped in {took:.1f} s"
    )


def check_addon_image(image: str) -> None:
    """run.sh under a stand-in for the Supervisor's bashio: options in, server out."""
    options = {
        "engine": "replicate",
        "voices_dir": "/share/wyoming-xtts/voices",
        "agree_cpml": False,
        "device": "cpu",
        "precision": "auto",
        "default_voice": "example",
        "default_language": "de",
        "replicate_api_token": REPLICATE_TOKEN,
        "pixazo_api_key": "",
        "cleanup_voice": True,
        "language_detection": False,
        "shutdown_grace": 3,
        "unload_after": 30,
        # A Wyoming server that is not there: the add-on serves on its primary alone.
        "fallback_engine": "tcp://127.0.0.1:10399",
        "max_waiting": 2,
        "debug_logging": True,
    }
    with tempfile.TemporaryDirectory(prefix="addon-", dir=_scratch()) as scratch:
        supervisor = Path(scratch)
        (supervisor / "options.json").write_text(json.dumps(options))
        stand_in = supervisor / "bashio"
        stand_in.write_text(_BASHIO_STAND_IN)
        stand_in.chmod(0o755)
        with_contenv = supervisor / "with-contenv"
        with_contenv.write_text('#!/bin/sh\nexec "$@"\n')
        with_contenv.chmod(0o755)
        files = {
            str(supervisor / "options.json"): Path("/data/options.json"),
            str(stand_in): Path("/usr/bin/bashio"),
            str(with_contenv): Path("/usr/bin/with-contenv"),
        }
        # Add-ons run as root under the Supervisor, with /share mounted.
        with running_image(
            image,
            files=files,
            command=["/run.sh"],
            user_id=0,
            voices_at=str(options["voices_dir"]),
            voices_writable=True,
        ) as running:
            wait_healthy(running)
            environment = _process_environment(running)
            expected = {
                "WYOMING_XTTS_ENGINE": "replicate",
                "WYOMING_XTTS_VOICES_DIR": "/share/wyoming-xtts/voices",
                "WYOMING_XTTS_DEVICE": "cpu",
                "WYOMING_XTTS_DEFAULT_LANGUAGE": "de",
                "WYOMING_XTTS_DEFAULT_VOICE": "example",
                "REPLICATE_API_TOKEN": REPLICATE_TOKEN,
                "WYOMING_XTTS_CLEANUP_VOICE": "1",
                "WYOMING_XTTS_NO_LANGUAGE_DETECTION": "1",
                "WYOMING_XTTS_SHUTDOWN_GRACE": "3",
                "WYOMING_XTTS_UNLOAD_AFTER": "30",
                "WYOMING_XTTS_FALLBACK_ENGINE": "tcp://127.0.0.1:10399",
                "WYOMING_XTTS_MAX_WAITING": "2",
                "WYOMING_XTTS_DEBUG": "1",
            }
            wrong = {k: environment.get(k) for k, v in expected.items() if environment.get(k) != v}
            assert not wrong, f"run.sh mapped options wrongly: {wrong}"
            assert "COQUI_TOS_AGREED" not in environment
            discovery = json.loads((running.rootfs / "tmp/discovery.json").read_text())
            assert discovery["service"] == "wyoming"
            assert discovery["config"]["uri"].endswith(f":{SERVER_PORT}")
            _check_studio_through_ingress(options)
            took = check_stop(running)
    print(
        f"container-check: {image}: run.sh maps every option, announces, serves; "
        f"the studio answers on the ingress port; stopped in {took:.1f} s"
    )


def _check_studio_through_ingress(options: dict[str, object]) -> None:
    """The add-on's panel: the page and the voices, as the Supervisor's ingress asks."""
    headers = {"X-Ingress-Path": "/api/hassio_ingress/check", "Sec-Fetch-Site": "same-origin"}
    base = f"http://127.0.0.1:{INGRESS_PORT}/"
    page = httpx.get(base, headers=headers, timeout=30)
    assert page.status_code == 200 and "static/studio.js" in page.text, page.text[:200]
    studio = httpx.get(base + "api/studio", headers=headers, timeout=30).json()
    assert studio["writable"], f"/share must be writable for the studio: {studio}"
    voices = httpx.get(base + "api/voices", headers=headers, timeout=30).json()["voices"]
    assert options["default_voice"] in [voice["name"] for voice in voices]


def check_stop(running: Running, replicate: FakeReplicate | None = None) -> float:
    """Stop the server as `docker stop` does (SIGTERM to the entry point, PID 1 in a
    container) and return how long it took: exit status 0 within Docker's stop timeout, and,
    with a provider to slow down, a reply in flight heard to its end."""
    speaking = None
    with ThreadPoolExecutor(1) as pool:
        if replicate is not None:
            replicate.processing_s = 2.0
            asked = len(replicate.calls("POST", "/v1/predictions"))
            speaking = pool.submit(speak, "The front door is open.", "example")
            deadline = time.monotonic() + 30
            while len(replicate.calls("POST", "/v1/predictions")) == asked:
                assert time.monotonic() < deadline, "the reply was never asked for"
                time.sleep(0.05)
        started = time.monotonic()
        os.kill(running.process.pid, signal.SIGTERM)
        status = running.process.wait(timeout=DOCKER_STOP_TIMEOUT_S)
        took = time.monotonic() - started
        assert status == 0, f"the server exited with status {status} on SIGTERM"
        if speaking is not None:
            assert speaking.result(timeout=10) > 0, "the reply in flight was cut"
    return took


def _check_common(running: Running) -> None:
    wait_healthy(running)
    assert server_user_ids(running) == {USER_ID}, "the server must not run as root"
    # /voices is mounted read-only (above); /data must be the server's to write.
    probe = running.run(["/bin/sh", "-c", "touch /data/.probe && rm /data/.probe"])
    assert probe.returncode == 0, f"/data is not writable: {probe.stderr}"
    refused = running.run(["/bin/sh", "-c", "touch /voices/.probe"])
    assert refused.returncode != 0, "the check meant /voices to be read-only"


def speak(text: str, voice: str) -> int:
    """Bytes of audio for one plain `synthesize` to the image's port."""

    async def ask() -> int:
        received = 0
        async with AsyncTcpClient("127.0.0.1", SERVER_PORT) as client:
            await client.write_event(Synthesize(text, voice=SynthesizeVoice(voice)).event())
            while True:
                event = await asyncio.wait_for(client.read_event(), timeout=120)
                assert event is not None, "the server closed the connection"
                if AudioChunk.is_type(event.type):
                    received += len(AudioChunk.from_event(event).audio)
                elif AudioStop.is_type(event.type):
                    return received
                elif event.type == "error":
                    raise AssertionError(f"error event: {event.data}")

    return asyncio.run(ask())


# -- helpers ------------------------------------------------------------------------------

_BASHIO_STAND_IN = r"""#!/bin/bash
# Stand-in for the Supervisor's bashio, enough for run.sh: options from /data/options.json,
# the discovery call recorded in /tmp/discovery.json.
bashio::config() { python3 -c 'import json,sys; v=json.load(open("/data/options.json")).get(sys.argv[1]); print("" if v is None else (str(v).lower() if isinstance(v,bool) else v))' "$1"; }
bashio::config.true() { [ "$(bashio::config "$1")" = "true" ]; }
bashio::config.false() { [ "$(bashio::config "$1")" = "false" ]; }
bashio::config.has_value() { [ -n "$(bashio::config "$1")" ]; }
bashio::discovery() { printf '{"service": "%s", "config": %s}' "$1" "$2" > /tmp/discovery.json; }
bashio::log.warning() { echo "WARNING: $*" >&2; }
source "$1"
"""


def _process_environment(running: Running) -> dict[str, str]:
    raw = Path(f"/proc/{running.process.pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode().split("\0") if "=" in item)


def _build_yaml_base() -> str:
    text = (ADDON / "build.yaml").read_text()
    line = next(line for line in text.splitlines() if line.strip().startswith("amd64:"))
    return line.split(":", 1)[1].strip()


def _build_yaml_args() -> dict[str, str]:
    lines = (ADDON / "build.yaml").read_text().split("args:", 1)[1].splitlines()
    pairs = (line.split(":", 1) for line in lines if ":" in line and line.strip()[0] != "#")
    return {key.strip(): value.strip() for key, value in pairs}


def _stop(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _scratch() -> str:
    directory = REPO / "build" / "container-check"
    directory.mkdir(parents=True, exist_ok=True)
    return str(directory)


def podman(
    *arguments: str, check: bool = True, quiet: bool = False, stdin: IO[bytes] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["podman", *arguments],
        check=check,
        text=True,
        stdin=stdin,
        stdout=subprocess.DEVNULL if quiet else subprocess.PIPE,
    )


@contextlib.contextmanager
def timed(report: Report, name: str) -> Iterator[None]:
    start = time.monotonic()
    yield
    report.seconds[name] = time.monotonic() - start


if __name__ == "__main__":
    sys.exit(main())
