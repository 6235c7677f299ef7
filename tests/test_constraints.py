"""constraints.txt pins every dependency the project declares, and the venv holds those pins.

A requirement added to pyproject.toml without `make lock` would install whatever version
PyPI serves on the day; a venv that drifted from the file would test something else than
what a clean clone installs.
"""

from __future__ import annotations

import tomllib
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
#: the extras `make` installs (`make lock` resolves the same)
EXTRAS = ("dev", "ui")


def pins() -> dict[str, str]:
    pinned: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, ver = line.partition("==")
        assert sep, f"constraints.txt: {line!r} is not an exact pin (name==version)"
        pinned[canonicalize_name(name)] = ver
    return pinned


def declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for extra in EXTRAS:
        lines += project["optional-dependencies"][extra]
    return [Requirement(line) for line in lines]


def test_every_declared_dependency_is_pinned_within_its_range() -> None:
    pinned = pins()
    for req in declared():
        name = canonicalize_name(req.name)
        assert name in pinned, f"{req.name} is in pyproject.toml but not in constraints.txt: " \
                               "run `make lock`"
        assert req.specifier.contains(pinned[name], prereleases=True), \
            f"constraints.txt pins {req.name}=={pinned[name]}, outside {req.specifier}"


def test_the_venv_holds_the_pinned_versions() -> None:
    drifted = []
    for name, ver in pins().items():
        try:
            installed = version(name)
        except PackageNotFoundError:
            drifted.append(f"{name}: not installed (pinned {ver})")
            continue
        if installed != ver:
            drifted.append(f"{name}: {installed} installed, {ver} pinned")
    assert not drifted, "the venv differs from constraints.txt (`make venv`): " + \
        "; ".join(drifted)
