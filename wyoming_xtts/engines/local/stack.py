"""Start-up self-check of the local engine's software stack.

PyTorch, torchaudio, transformers and coqui-tts break each other across releases in ways that
surface as tracebacks deep inside coqui-tts: a torchaudio built for another torch fails at
import with an undefined symbol, a newer transformers makes GPT generation fail on its first
token. A user reading such a traceback cannot tell that the fix is reinstalling the tested
versions. So before importing any of them the installed versions are compared with the ones
this package declares (read from its own metadata, so pyproject.toml stays the one place they
are written), and a failure while importing or speaking the warm-up sentence is reported as one
sentence naming the versions and the command that fixes it.
"""

from collections.abc import Callable, Sequence
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

from ...core.engine import EngineUnavailableError

STACK = ("torch", "torchaudio", "transformers", "coqui-tts")
"""The packages whose versions must agree for the local engine to work."""

ONNX_STACK = ("onnxruntime", "onnx", "onnx-ir")
"""What the GPT on ONNX Runtime needs besides (`--gpt-runtime onnx`, or `auto` on a CPU):
not checked with `--gpt-runtime torch`, so that a broken ONNX Runtime never stops PyTorch."""

_SAME_RELEASE = ("torch", "torchaudio")
_DISTRIBUTION = "wyoming-xtts"
_EXTRA = "local"
_CHECKOUT = Path(__file__).resolve().parents[3]


def check_installed_stack(
    installed: Callable[[str], str] = metadata.version,
    declared: Sequence[str] | None = None,
    runtime_packages: Sequence[str] = (),
) -> None:
    """Raise `EngineUnavailableError` when the installed stack is not the declared one.

    `installed` maps a distribution name to its installed version (raising
    `PackageNotFoundError` when absent); `declared` are the package's requirement strings
    (default: its own metadata). Both are parameters so the check is testable as it runs.
    `runtime_packages` are checked too (`ONNX_STACK` for `--gpt-runtime onnx`).
    """
    packages = (*STACK, *runtime_packages)
    requirements = {
        requirement.name: requirement
        for requirement in _local_requirements(declared)
        if requirement.name in packages
    }
    versions: dict[str, Version] = {}
    for name in packages:
        try:
            versions[name] = Version(installed(name))
        except metadata.PackageNotFoundError:
            raise EngineUnavailableError(
                f"{name} is not installed, and the local engine needs it: "
                f"{_fix_command(requirements.get(name))} Or use a cloud provider with "
                "--engine replicate or --engine pixazo."
            ) from None
        requirement = requirements.get(name)
        if requirement is not None and not requirement.specifier.contains(
            versions[name], prereleases=True
        ):
            raise EngineUnavailableError(
                f"{name} {versions[name]} is installed, but this version of wyoming-xtts is "
                f"tested with {requirement.name}{requirement.specifier} only: "
                f"{_fix_command(requirement)}"
            )
    first, second = _SAME_RELEASE
    if versions[first].release != versions[second].release:
        raise EngineUnavailableError(
            f"{second} {versions[second]} is not the same release as {first} "
            f"{versions[first]}, and coqui-tts needs the two to match: "
            f"{_fix_command(requirements.get(second))}"
        )


def stack_failure(during: str, error: BaseException) -> EngineUnavailableError:
    """One sentence for an unexpected failure from inside the stack (import or generation)."""
    return EngineUnavailableError(
        f"The local engine failed while {during} ({type(error).__name__}: {error}) "
        f"with {describe_stack()}; this usually means a package outside the tested versions: "
        f"{_fix_command(None)}"
    )


def describe_stack(installed: Callable[[str], str] = metadata.version) -> str:
    """ "torch 2.11.0, torchaudio 2.11.0, ...": the installed versions, for messages and logs."""
    parts = []
    for name in (*STACK, *ONNX_STACK):
        try:
            parts.append(f"{name} {installed(name)}")
        except metadata.PackageNotFoundError:
            parts.append(f"{name} (not installed)")
    return ", ".join(parts)


def _local_requirements(declared: Sequence[str] | None) -> list[Requirement]:
    if declared is None:
        declared = metadata.requires(_DISTRIBUTION) or []
    requirements = []
    for text in declared:
        requirement = Requirement(text)
        if requirement.marker is None or requirement.marker.evaluate({"extra": _EXTRA}):
            requirements.append(requirement)
    return requirements


def _fix_command(requirement: Requirement | None) -> str:
    """The command that puts the tested versions back, for a checkout or a pip install."""
    if (_CHECKOUT / "locks" / "local.txt").is_file():
        return (
            f"run `script/install local --force` in {_CHECKOUT} to reinstall the tested versions."
        )
    if requirement is not None:
        return f"install the tested versions with `pip install '{requirement}'`."
    return (
        "reinstall the tested versions with `pip install --force-reinstall 'wyoming-xtts[local]'`."
    )
