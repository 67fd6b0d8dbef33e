"""A wheelhouse: every wheel an app's requirements resolve to, for the Python
and platform of the image, so that the image builds with ``pip install
--no-index`` (no PyPI, no proxy, seconds instead of a minute).

Resolution runs on the controller's pip (its index, its CA, its markers);
each pinned distribution is then fetched as a wheel for the target, and the
few that PyPI has only as source are built into pure-Python wheels. A source
distribution that needs compiling for another target is refused, named.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

MANIFEST = ".wheelhouse.json"
# pip's message for a pin it cannot get as a wheel for the target.
NO_WHEEL = re.compile(r"No matching distribution found for ([A-Za-z0-9._-]+)==([^\s)]+)")
NAME = re.compile(r"[-_.]+")


def canonical(name: str) -> str:
    return NAME.sub("-", name).lower()


def pins_from_report(report: dict) -> list[str]:
    """name==version of every distribution a ``pip install --dry-run --report``
    would install, sorted by name."""
    pins = {
        canonical(item["metadata"]["name"]): item["metadata"]["version"]
        for item in report.get("install", [])
    }
    return [f"{name}=={version}" for name, version in sorted(pins.items())]


def source_only_pins(report: dict) -> list[str]:
    """name==version of the distributions a ``pip install --dry-run --report``
    would install from source: PyPI has no wheel of them for the controller,
    so most likely none for the target either. pip download stops at the
    first pin it has no wheel for; asked for first and on their own, these
    pins cost a second each instead of a pass over the whole list each."""
    return sorted(
        f"{canonical(item['metadata']['name'])}=={item['metadata']['version']}"
        for item in report.get("install", [])
        if not item.get("download_info", {}).get("url", "").endswith(".whl")
    )


def digest(pins: Sequence[str], python_version: str, platforms: Sequence[str]) -> str:
    """What a wheelhouse is made for: the pins and the target."""
    text = json.dumps(
        {"pins": sorted(pins), "python": python_version, "platforms": sorted(platforms)}
    )
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def python_tag(python_version: str) -> str:
    major, minor = python_version.split(".")[:2]
    return f"{major}{minor}"


def download_wheels_command(
    python: str, pins: Iterable[str], dest: Path, python_version: str, platforms: Sequence[str]
) -> list[str]:
    """pip download of the pins as wheels for the target only, without deps
    (the pins are the whole resolution already)."""
    command = [
        python, "-m", "pip", "download", "--disable-pip-version-check", "--no-deps",
        "--only-binary=:all:", "--implementation", "cp",
        "--python-version", python_version, "--dest", str(dest),
    ]  # fmt: skip
    for platform in platforms:
        command += ["--platform", platform]
    return command + list(pins)


def pins_without_wheel(stderr: str) -> list[str]:
    """The pins pip said it has no wheel for."""
    return [f"{canonical(name)}=={version}" for name, version in NO_WHEEL.findall(stderr)]


def is_pure(wheel: str) -> bool:
    return wheel.endswith("-none-any.whl")


def read_manifest(dest: Path) -> dict:
    try:
        return json.loads((dest / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}


def is_current(dest: Path, wanted: str) -> bool:
    """Whether ``dest`` already holds the wheelhouse of digest ``wanted``, whole."""
    manifest = read_manifest(dest)
    return manifest.get("digest") == wanted and all(
        (dest / wheel).is_file() for wheel in manifest.get("wheels", [])
    )


def listing(dest: Path) -> str:
    """What the wheelhouse holds, for the image's tag: its digest, else the
    names and sizes of its wheels."""
    manifest = read_manifest(dest)
    if manifest.get("digest"):
        return str(manifest["digest"])
    wheels = sorted(p for p in dest.glob("*.whl"))
    return hashlib.sha256(
        "\n".join(f"{p.name} {p.stat().st_size}" for p in wheels).encode()
    ).hexdigest()[:16]
