#!/usr/bin/env python3
"""The lock files in locks/: one per install flavour, checked against pyproject.toml.

Every install in this repository (script/install, and through it script/run, script/test,
.ci/run, the Dockerfile and the add-on) installs exactly one of these files: every package
pinned, transitive ones included, with the hashes of every wheel for Linux x86-64 and aarch64.
A range in pyproject.toml is a promise about releases nobody has tested yet; a lock is what
the tests ran with.

The check runs with nothing but the interpreter that creates the virtualenv (standard library
only), before anything is installed, so a lock that no longer matches pyproject.toml stops the
install with the command that fixes it. Writing the locks needs uv (locks/tools.txt) and runs
only from script/lock and script/upgrade.

    script/locks.py check FLAVOUR...       exit 1, saying what to run, when a lock is stale
    script/locks.py build-requirements FLAVOUR
                                           the lock's entries for the build backend
    script/locks.py write [--upgrade]      regenerate every lock (script/lock runs this)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    # Only writing locks needs packaging (from locks/tools.txt); checking them is stdlib-only.
    from packaging.requirements import Requirement

try:
    import tomllib
except ModuleNotFoundError:  # Python < 3.11, which the package does not support either
    sys.exit(
        f"error: Python {sys.version.split()[0]} is too old for wyoming-xtts; use 3.11 or newer."
    )

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = REPO / "pyproject.toml"
LOCKS = REPO / "locks"
# The oldest Python the package supports; newer ones get their own forks where needed.
PYTHON_VERSION = "3.11"
# Packages that only work as one release of each (coqui-tts refuses a torchaudio that is not
# torch's own release, and torchaudio's releases lag torch's).
_SAME_RELEASE = (("torch", "torchaudio"),)
_BUILD_REQUIREMENTS = ".build-system.in"
"""pyproject's build-system requirements, written next to the locks while they are made."""
_DIGEST_PREFIX = "# pyproject-dependencies-sha256: "
_PINNED = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)", re.MULTILINE)


@dataclass(frozen=True)
class Flavour:
    """One way of installing the project, and the lock that pins it."""

    name: str
    """The file stem in locks/ and the argument of script/install."""

    extras: tuple[str, ...] = ()
    """Optional dependencies of the package included in the lock."""

    groups: tuple[str, ...] = ()
    """Dependency groups (PEP 735) included in the lock."""

    with_project: bool = True
    """Whether the package's own dependencies (and its build backend) are locked too."""

    @property
    def path(self) -> Path:
        return LOCKS / f"{self.name}.txt"


FLAVOURS = {
    flavour.name: flavour
    for flavour in (
        # The cloud proxy: no torch, ever (a test checks the lock).
        Flavour("proxy"),
        # The local engine: PyTorch from PyPI (CUDA build on x86-64 and aarch64; runs on a CPU).
        Flavour("local", extras=("local",)),
        # What script/test and script/lint need: the local engine plus test and lint tools.
        Flavour("dev", extras=("local",), groups=("dev",)),
        # uv itself, to write the other locks.
        Flavour("tools", groups=("lock",), with_project=False),
    )
}


def dependency_digest(pyproject_text: str) -> str:
    """Hash of everything in pyproject.toml that decides what a lock contains."""
    data = tomllib.loads(pyproject_text)
    project = data.get("project", {})
    relevant = {
        "build-system": data.get("build-system", {}).get("requires", []),
        "requires-python": project.get("requires-python"),
        "dependencies": project.get("dependencies", []),
        "optional-dependencies": project.get("optional-dependencies", {}),
        "dependency-groups": data.get("dependency-groups", {}),
        "uv": data.get("tool", {}).get("uv", {}),
    }
    canonical = json.dumps(relevant, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def recorded_digest(lock_text: str) -> str | None:
    for line in lock_text.splitlines():
        if line.startswith(_DIGEST_PREFIX):
            return line.removeprefix(_DIGEST_PREFIX).strip()
    return None


def stale_locks(names: list[str]) -> list[str]:
    """Problems with the named locks, as sentences; empty when all match pyproject.toml."""
    pyproject_text = PYPROJECT.read_text()
    expected = dependency_digest(pyproject_text)
    problems = []
    requires_python = tomllib.loads(pyproject_text)["project"]["requires-python"]
    if not _python_admitted(requires_python, sys.version_info[:2]):
        problems.append(
            f"Python {sys.version.split()[0]} is outside what the locks cover ({requires_python}); "
            "set PYTHON to a supported interpreter"
        )
    for name in names:
        flavour = FLAVOURS.get(name)
        if flavour is None:
            problems.append(f"unknown install flavour {name!r} (one of {', '.join(FLAVOURS)})")
        elif not flavour.path.is_file():
            problems.append(f"{flavour.path.relative_to(REPO)} is missing")
        elif recorded_digest(flavour.path.read_text()) != expected:
            problems.append(
                f"{flavour.path.relative_to(REPO)} was not regenerated after the dependencies "
                "in pyproject.toml changed"
            )
    return problems


def _python_admitted(requires_python: str, version: tuple[int, int]) -> bool:
    """Whether `version` satisfies a requires-python of the form ">=3.11,<3.15" (stdlib only)."""
    for clause in requires_python.split(","):
        match = re.fullmatch(r"\s*(>=|<)\s*(\d+)\.(\d+)\s*", clause)
        if match is None:
            raise ValueError(f"requires-python clause {clause!r}: only >= and < are understood")
        operator, major, minor = match.groups()
        bound = (int(major), int(minor))
        if (operator == ">=" and version < bound) or (operator == "<" and version >= bound):
            return False
    return True


def build_requirements(name: str) -> str:
    """The lock's lines (with hashes) for the build backend, to install before the rest.

    Packages published only as source are built with the locked setuptools
    (--no-build-isolation) rather than one pip would resolve afresh for each build.
    """
    backend = {_canonical(_requirement_name(r)) for r in _build_system_requires()}
    blocks = re.split(r"\n(?=[A-Za-z0-9])", FLAVOURS[name].path.read_text())
    chosen = [b for b in blocks if (m := _PINNED.match(b)) and _canonical(m.group(1)) in backend]
    return "\n".join(block.rstrip() for block in chosen) + "\n"


def write_locks(upgrade: bool) -> None:
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    if uv is None:
        sys.exit("uv is not installed: run script/lock, which installs it from locks/tools.txt")
    LOCKS.mkdir(exist_ok=True)
    if upgrade:
        _raise_upper_bounds(uv)
    digest = dependency_digest(PYPROJECT.read_text())
    # A fixed relative path: uv names it in the locks' "via" comments, which must not change
    # from one run to the next.
    build_in = LOCKS / _BUILD_REQUIREMENTS
    build_in.write_text("\n".join(_build_system_requires()) + "\n")
    try:
        for flavour in FLAVOURS.values():
            _compile(uv, flavour, PYPROJECT, build_in.relative_to(REPO), flavour.path, upgrade)
            text = flavour.path.read_text()
            flavour.path.write_text(
                f"# Lock for `script/install {flavour.name}`: written by script/lock, "
                "do not edit.\n"
                f"{_DIGEST_PREFIX}{digest}\n{text}"
            )
            print(f"wrote {flavour.path.relative_to(REPO)}", file=sys.stderr)
    finally:
        build_in.unlink(missing_ok=True)


def _compile(
    uv: str,
    flavour: Flavour,
    pyproject: Path,
    build_in: Path,
    output: Path,
    upgrade: bool,
    constraints: Path | None = None,
) -> None:
    command = [uv, "pip", "compile", "--quiet", "--universal", "--generate-hashes"]
    command += ["--python-version", PYTHON_VERSION, "--custom-compile-command", "script/lock"]
    command += ["--output-file", str(output)]
    if flavour.with_project:
        command += [str(pyproject), str(build_in)]
    for extra in flavour.extras:
        command += ["--extra", extra]
    for group in flavour.groups:
        command += ["--group", f"{pyproject}:{group}"]
    if upgrade:
        command.append("--upgrade")
    if constraints is not None:
        command += ["--constraints", str(constraints)]
    # Without --upgrade, uv keeps the versions already in the output file where they still fit.
    subprocess.run(command, check=True, cwd=pyproject.parent, env={**os.environ, "NO_COLOR": "1"})


def _raise_upper_bounds(uv: str) -> None:
    """Resolve with every upper bound lifted, then move pyproject.toml's bounds to the result.

    Exact pins (`==`) move to the new release; upper bounds (`<`) move to just below the
    next minor release after it. The tests that script/upgrade runs next decide whether
    the new set is kept.
    """
    from packaging.requirements import Requirement

    text = PYPROJECT.read_text()
    relaxed = text
    for requirement_text in _direct_requirements(text):
        relaxed = relaxed.replace(
            f'"{requirement_text}"', f'"{_without_upper_bound(requirement_text)}"', 1
        )
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        (workdir / "pyproject.toml").write_text(relaxed)
        shutil.copy(REPO / "README.md", workdir / "README.md")
        shutil.copytree(REPO / "wyoming_xtts", workdir / "wyoming_xtts")
        build_in = workdir / "build-system.in"
        build_in.write_text("\n".join(_build_system_requires()) + "\n")
        lock = workdir / "relaxed.txt"
        pairs = workdir / "same-release.txt"
        pairs.write_text(
            "".join(
                f"{name}=={_newest_common_release(group)}\n"
                for group in _SAME_RELEASE
                for name in group
            )
        )
        _compile(uv, FLAVOURS["dev"], workdir / "pyproject.toml", build_in, lock, True, pairs)
        newest = versions_for_tested_platform(lock.read_text())
    for requirement_text in _direct_requirements(text):
        requirement = Requirement(requirement_text)
        version = newest.get(_canonical(requirement.name))
        if version is None:
            continue
        moved = _move_bounds(requirement_text, version)
        if moved != requirement_text:
            print(f"pyproject.toml: {requirement_text} -> {moved}", file=sys.stderr)
            text = text.replace(f'"{requirement_text}"', f'"{moved}"', 1)
    PYPROJECT.write_text(text)


def _newest_common_release(names: tuple[str, ...]) -> str:
    """The newest final release that every package of a group has published on PyPI."""
    from packaging.version import Version

    common: set[Version] | None = None
    for name in names:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=60) as reply:
            releases = json.load(reply)["releases"]
        published = {
            Version(version)
            for version, files in releases.items()
            if files and not all(file.get("yanked") for file in files)
        }
        final = {version for version in published if not version.is_prerelease}
        common = final if common is None else common & final
    if not common:
        raise SystemExit(f"error: {', '.join(names)} have no release in common")
    return str(max(common))


def _move_bounds(requirement_text: str, version: str) -> str:
    from packaging.requirements import Requirement
    from packaging.version import Version

    requirement = Requirement(requirement_text)
    release = Version(version).release
    next_minor = f"{release[0]}.{release[1] + 1}" if len(release) > 1 else f"{release[0] + 1}"
    specifiers = []
    for specifier in requirement.specifier:
        if specifier.operator == "==":
            specifiers.append(f"=={version}")
        elif specifier.operator in ("<", "<="):
            # Only ever raised: a bound above the newest release stays where it was.
            raised = max(Version(next_minor), Version(specifier.version))
            specifiers.append(f"<{raised}")
        else:
            specifiers.append(str(specifier))
    return _render(requirement, sorted(specifiers, key=_lower_bounds_first))


def _without_upper_bound(requirement_text: str) -> str:
    from packaging.requirements import Requirement

    requirement = Requirement(requirement_text)
    kept = []
    for specifier in requirement.specifier:
        if specifier.operator in ("==", "~=", "==="):
            kept.append(f">={specifier.version}")
        elif specifier.operator not in ("<", "<="):
            kept.append(str(specifier))
    return _render(requirement, kept)


def _render(requirement: Requirement, specifiers: list[str]) -> str:
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    marker = f"; {requirement.marker}" if requirement.marker else ""
    return f"{requirement.name}{extras}{','.join(specifiers)}{marker}"


def _lower_bounds_first(specifier: str) -> int:
    return 0 if specifier.startswith((">", "==")) else 1


def versions_for_tested_platform(lock_text: str) -> dict[str, str]:
    """Each package's version in a lock for the platform the tests run on (x86-64, 3.11)."""
    from packaging.markers import Marker

    environment = {
        "python_version": PYTHON_VERSION,
        "python_full_version": f"{PYTHON_VERSION}.0",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "os_name": "posix",
    }
    versions = {}
    for line in lock_text.splitlines():
        if not (match := _PINNED.match(line)):
            continue
        marker = line.split(";", 1)[1].rstrip(" \\") if ";" in line else ""
        if not marker or Marker(marker).evaluate(environment):
            versions[_canonical(match.group(1))] = match.group(2)
    return versions


def _direct_requirements(pyproject_text: str) -> list[str]:
    data = tomllib.loads(pyproject_text)
    project = data["project"]
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    for group in data.get("dependency-groups", {}).values():
        requirements += [entry for entry in group if isinstance(entry, str)]
    return requirements


def _build_system_requires() -> list[str]:
    return list(tomllib.loads(PYPROJECT.read_text())["build-system"]["requires"])


def _requirement_name(requirement: str) -> str:
    return re.split(r"[\s\[<>=!~;]", requirement, maxsplit=1)[0]


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("check", help="fail when a lock does not match pyproject.toml")
    check.add_argument("flavours", nargs="+", metavar="FLAVOUR")
    build = commands.add_parser("build-requirements", help="print the build backend's entries")
    build.add_argument("flavour", choices=sorted(FLAVOURS))
    write = commands.add_parser("write", help="regenerate every lock with uv")
    write.add_argument("--upgrade", action="store_true", help="newest releases, bounds moved")
    arguments = parser.parse_args()

    if arguments.command == "check":
        problems = stale_locks(arguments.flavours)
        for problem in problems:
            print(
                f"error: {problem}. Run script/lock to regenerate the locks, "
                "then commit pyproject.toml and locks/ together.",
                file=sys.stderr,
            )
        sys.exit(1 if problems else 0)
    elif arguments.command == "build-requirements":
        sys.stdout.write(build_requirements(arguments.flavour))
    else:
        write_locks(arguments.upgrade)


if __name__ == "__main__":
    main()
