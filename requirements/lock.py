"""The lock files: exact versions, with hashes, of what rehabmap runs on (`runtime.txt`) and what its tests
need besides (`test.txt`), resolved from pyproject.toml.

    python3 requirements/lock.py           # refresh both from pyproject.toml (needs uv and the package index)
    python3 requirements/lock.py --check   # offline: exit 1 when pyproject.toml and the locks disagree

pyproject.toml keeps loose lower bounds so `pip install -e .` works for library users; the locks make a
checkout reproducible. Each lock records a digest of the requirements it was made from, so a change to
pyproject.toml that was not locked again fails CI, and every direct requirement must be satisfied by its pin.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYPROJECT = HERE.parent / "pyproject.toml"
PYTHON = "3.11"
LOCKS = {"runtime.txt": (), "test.txt": ("test",)}  # lock file -> the extras it adds to the runtime
DIGEST = re.compile(r"^# requirements-sha256: ([0-9a-f]{64})$", re.M)
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)", re.M)


def requirements(extras: tuple[str, ...]) -> list[str]:
    """The direct requirements of the project with these extras, as pyproject.toml states them."""
    project = tomllib.loads(PYPROJECT.read_text(encoding="utf-8"))["project"]
    found = list(project["dependencies"])
    for extra in extras:
        found += project["optional-dependencies"][extra]
    return found


def digest(reqs: list[str]) -> str:
    return hashlib.sha256(json.dumps(sorted(reqs)).encode()).hexdigest()


def refresh() -> None:
    for name, extras in LOCKS.items():
        out = HERE / name
        command = ["uv", "pip", "compile", "pyproject.toml", "--generate-hashes", "--universal",
                   "--python-version", PYTHON, "--quiet", "--custom-compile-command", "python3 requirements/lock.py",
                   "-o", f"requirements/{name}"]
        command += [arg for extra in extras for arg in ("--extra", extra)]
        subprocess.run(command, check=True, cwd=PYPROJECT.parent)
        text = out.read_text(encoding="utf-8")
        out.write_text(f"# requirements-sha256: {digest(requirements(extras))}\n{text}", encoding="utf-8")
        print(f"wrote {out.relative_to(HERE.parent)}")


def problems(name: str, extras: tuple[str, ...]) -> list[str]:
    """Why the lock `name` does not fit pyproject.toml; empty when it does."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    path = HERE / name
    if not path.is_file():
        return [f"{name} is missing: run python3 requirements/lock.py"]
    text = path.read_text(encoding="utf-8")
    found = []
    recorded = DIGEST.search(text)
    reqs = requirements(extras)
    if recorded is None or recorded.group(1) != digest(reqs):
        found.append(f"{name} was not made from the requirements in pyproject.toml as they are now: "
                     "run python3 requirements/lock.py")
    pins = {canonicalize_name(m.group(1)): m.group(2) for m in PIN.finditer(text)}
    for req in map(Requirement, reqs):
        if req.marker is not None and not req.marker.evaluate():
            continue
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            found.append(f"{name} has no pin for {req.name}")
        elif not req.specifier.contains(pinned, prereleases=True):
            found.append(f"{name} pins {req.name}=={pinned}, outside pyproject.toml's '{req}'")
    unhashed = [m.group(0) for m in PIN.finditer(text) if not _hashed(text, m.end())]
    found += [f"{name}: {pin} has no --hash" for pin in unhashed]
    return found


def _hashed(text: str, end: int) -> bool:
    following = text[end:].split("\n", 2)
    return len(following) > 1 and "--hash=" in following[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check that the locks fit pyproject.toml")
    if not parser.parse_args().check:
        refresh()
    found = [p for name, extras in LOCKS.items() for p in problems(name, extras)]
    for problem in found:
        print(f"lock: {problem}", file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
