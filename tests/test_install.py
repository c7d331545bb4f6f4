"""The installs stay reproducible: locks agree with pyproject.toml, and the local engine
refuses an untested PyTorch stack with one sentence instead of a traceback."""

import importlib.util
import os
import re
import shutil
import subprocess
import sys
import tomllib
from importlib import metadata
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement

from wyoming_xtts.core.engine import EngineUnavailableError
from wyoming_xtts.engines.local.stack import (
    ONNX_STACK,
    STACK,
    check_installed_stack,
    stack_failure,
)

REPO = Path(__file__).resolve().parents[1]
LOCK_NAMES = ("proxy", "local", "dev", "tools")
TORCH_STACK = ("torch", "torchaudio", "transformers", "coqui-tts", "triton")
ONNX_RUNTIME = ("onnxruntime", "onnx")


def _load_locks_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("locks", REPO / "script" / "locks.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("locks", module)  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


locks = _load_locks_script()


def locked_versions(name: str) -> dict[str, str]:
    """Package → version in a lock, for the platform the tests run on."""
    return locks.versions_for_tested_platform((REPO / "locks" / f"{name}.txt").read_text())


def run_locks(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(script), *args], capture_output=True, text=True, check=False
    )


def test_every_lock_matches_pyproject() -> None:
    result = run_locks(REPO / "script" / "locks.py", "check", *LOCK_NAMES)

    assert result.returncode == 0, result.stderr


def test_changing_a_dependency_without_relocking_stops_the_install(tmp_path: Path) -> None:
    for path in ("pyproject.toml", "locks", "script"):
        source = REPO / path
        copy = shutil.copytree if source.is_dir() else shutil.copy
        copy(source, tmp_path / path)
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('"emoji>=2.10,', '"emoji>=2.11,'))

    check = run_locks(tmp_path / "script" / "locks.py", "check", "proxy")
    install = subprocess.run(
        [str(tmp_path / "script" / "install"), "proxy"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "VENV": str(tmp_path / "venv")},
    )

    assert check.returncode == 1
    assert "locks/proxy.txt was not regenerated" in check.stderr
    assert "script/lock" in check.stderr
    assert install.returncode == 1 and "script/lock" in install.stderr
    assert not (tmp_path / "venv").exists(), "nothing is installed from a stale lock"


def test_an_unknown_flavour_is_refused() -> None:
    unknown = run_locks(REPO / "script" / "locks.py", "check", "gpu")

    assert unknown.returncode == 1 and "unknown install flavour 'gpu'" in unknown.stderr


@pytest.mark.parametrize(
    ("version", "admitted"), [((3, 10), False), ((3, 11), True), ((3, 14), True), ((3, 15), False)]
)
def test_only_pythons_the_locks_cover_are_admitted(
    version: tuple[int, int], admitted: bool
) -> None:
    requires_python = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "requires-python"
    ]

    assert locks._python_admitted(requires_python, version) is admitted


@pytest.mark.parametrize("name", LOCK_NAMES)
def test_every_locked_package_is_pinned_exactly_with_hashes(name: str) -> None:
    text = (REPO / "locks" / f"{name}.txt").read_text()
    blocks = [b for b in re.split(r"\n(?=[a-z0-9])", text) if re.match(r"[a-z0-9]", b)]

    assert blocks
    for block in blocks:
        assert re.match(r"[a-z0-9][a-z0-9._-]*==\S+", block), block.splitlines()[0]
        assert "--hash=sha256:" in block, block.splitlines()[0]


def test_the_proxy_lock_has_no_torch_and_no_onnx_runtime() -> None:
    text = (REPO / "locks" / "proxy.txt").read_text()
    heavy = [
        n
        for n in re.findall(r"^([a-z0-9][a-z0-9._-]*)==", text, re.MULTILINE)
        if n in TORCH_STACK + ONNX_RUNTIME
    ]

    assert heavy == []
    assert not re.search(r"^nvidia-", text, re.MULTILINE)


def test_locked_versions_satisfy_the_ranges_in_pyproject() -> None:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    project = data["project"]
    groups = data["dependency-groups"]
    expectations = {
        "proxy": project["dependencies"],
        "local": project["dependencies"] + project["optional-dependencies"]["local"],
        "dev": project["dependencies"]
        + project["optional-dependencies"]["local"]
        + groups["test"]
        + groups["lint"],
        "tools": groups["lock"],
    }
    for name, requirements in expectations.items():
        versions = locked_versions(name)
        for text in requirements:
            requirement = Requirement(text)
            locked = versions.get(requirement.name)
            assert locked is not None, f"{requirement.name} missing from locks/{name}.txt"
            assert requirement.specifier.contains(locked), f"{name}: {requirement} vs {locked}"


def test_torch_and_torchaudio_are_one_exact_release_in_pyproject() -> None:
    local = tomllib.loads((REPO / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]["local"]
    pins = {Requirement(text).name: str(Requirement(text).specifier) for text in local}

    assert pins["torch"].startswith("==") and pins["torch"] == pins["torchaudio"]
    assert pins["coqui-tts"].startswith("==")
    assert "<" in pins["transformers"]


def test_the_installed_stack_passes_its_own_check() -> None:
    check_installed_stack()


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        (
            {"torchaudio": "2.11.1"},
            (
                "torchaudio 2.11.1 is installed, but this version of wyoming-xtts is tested with "
                "torchaudio==2.11.0 only"
            ),
        ),
        (
            {"transformers": "5.24.0"},
            (
                "transformers 5.24.0 is installed, but this version of wyoming-xtts is tested with "
                "transformers<5.24,>=4.57 only"
            ),
        ),
        ({"coqui-tts": None}, "coqui-tts is not installed, and the local engine needs it"),
    ],
)
def test_an_untested_stack_is_named_with_the_command_that_fixes_it(
    installed: dict[str, str | None], expected: str
) -> None:
    def version(name: str) -> str:
        if name in installed:
            if installed[name] is None:
                raise metadata.PackageNotFoundError(name)
            return str(installed[name])
        return metadata.version(name)

    with pytest.raises(EngineUnavailableError) as raised:
        check_installed_stack(version)

    message = str(raised.value)
    assert message.startswith(expected)
    assert "script/install local --force" in message
    assert "\n" not in message


def test_the_local_lock_has_onnx_runtime_for_x86_64_and_aarch64() -> None:
    """One hash per wheel: Python 3.11-3.14 on both architectures (source builds never)."""
    text = (REPO / "locks" / "local.txt").read_text()
    for name in ONNX_RUNTIME:
        block = re.search(rf"^{name}==\S+ ; (.*?)(?=^\S)", text, re.MULTILINE | re.DOTALL)
        assert block is not None, name
        assert "aarch64" in block.group(1) and "x86_64" in block.group(1)
        assert block.group(1).count("--hash=sha256:") >= (8 if name == "onnxruntime" else 4)


@pytest.mark.parametrize(
    ("installed", "expected"),
    [
        ({"onnxruntime": "1.33.0"}, "onnxruntime 1.33.0 is installed, but this version"),
        ({"onnxruntime": None}, "onnxruntime is not installed, and the local engine needs it"),
    ],
)
def test_an_untested_onnx_runtime_is_named_only_when_it_is_asked_for(
    installed: dict[str, str | None], expected: str
) -> None:
    def version(name: str) -> str:
        if name in installed:
            if installed[name] is None:
                raise metadata.PackageNotFoundError(name)
            return str(installed[name])
        return metadata.version(name)

    check_installed_stack(version)  # --gpt-runtime torch never needs it
    with pytest.raises(EngineUnavailableError) as raised:
        check_installed_stack(version, runtime_packages=ONNX_STACK)
    assert str(raised.value).startswith(expected)


def test_torch_and_torchaudio_of_different_releases_are_refused_even_when_in_range() -> None:
    versions = {"torch": "2.11.0+cu130", "torchaudio": "2.10.0"}
    declared = ["torch>=2.10", "torchaudio>=2.10"]

    with pytest.raises(EngineUnavailableError, match="is not the same release as torch"):
        check_installed_stack(lambda name: versions.get(name) or metadata.version(name), declared)


def test_a_failure_inside_the_stack_becomes_one_sentence_with_the_versions() -> None:
    error = AttributeError("'NoneType' object has no attribute 'get_seq_length'")

    message = str(stack_failure("speaking its warm-up sentence", error))

    assert message.startswith(
        "The local engine failed while speaking its warm-up sentence (AttributeError: "
    )
    assert all(f"{name} {metadata.version(name)}" in message for name in STACK)
    assert "script/install local --force" in message


def test_the_server_refuses_an_untested_transformers_before_loading_anything(
    tmp_path: Path, checkpoint_dir: Path
) -> None:
    # A distribution record that shadows the installed transformers' version, as a manual
    # `pip install transformers==5.24.0` would leave it.
    record = tmp_path / "shadow" / "transformers-5.24.0.dist-info"
    record.mkdir(parents=True)
    (record / "METADATA").write_text("Metadata-Version: 2.1\nName: transformers\nVersion: 5.24.0\n")
    environment = {**os.environ, "PYTHONPATH": str(tmp_path / "shadow")}

    result = subprocess.run(
        [sys.executable, "-m", "wyoming_xtts", "--model-dir", str(checkpoint_dir)]
        + ["--data-dir", str(tmp_path / "data"), "--uri", "tcp://127.0.0.1:0"],
        capture_output=True,
        text=True,
        timeout=120,
        env=environment,
        check=False,
    )

    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(
            "wyoming-xtts: transformers 5.24.0 is installed, but this version of wyoming-xtts is "
            "tested with transformers<5.24,>=4.57 only: run `script/install local --force`"
        )
    )
