"""Lookup of the chainlit_app role: the files of a Chainlit app directory on
the controller, and a hash of their names and contents (the image's tag)."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: chainlit_app_source
short_description: Files of a Chainlit app directory and the tag of its image
description:
  - Lists the files of an app directory on the controller, leaving out what
    must not reach an image (VCS data, caches, virtualenvs, uploads and any
    local .env), hashes their relative paths and contents, and derives the
    image tag from that hash and everything else that goes into the image.
    The chainlit_app role tags what it builds with it; the troubleshoot role
    compares it with the running image.
options:
  _terms:
    description: The app directory.
    required: true
  base_image:
    description: The build's base image.
    type: str
    default: ""
  asyncpg_requirement:
    description: The requirement added when requirements.txt lacks asyncpg.
    type: str
    default: ""
  generic_dockerfile:
    description: The Dockerfile used when the app has none (its rendered text).
    type: str
    default: ""
"""

RETURN = r"""
_raw:
  description: >-
    One dict: C(files) (list of {path, src, mode}), C(hash) of the files,
    C(requirements) (text of requirements.txt), C(adds_asyncpg),
    C(has_dockerfile) and C(tag) (16 hex digits).
  type: list
"""

SKIPPED_DIRS = {".git", "__pycache__", ".files", ".venv", "venv", "node_modules", ".pytest_cache"}
SKIPPED_FILES = {".env"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}
ASYNCPG_LINE = re.compile(r"^\s*asyncpg\b", re.IGNORECASE | re.MULTILINE)


def app_source(directory: Path) -> dict[str, Any]:
    if not (directory / "requirements.txt").is_file():
        raise AnsibleLookupError(
            f"chainlit_app_src '{directory}' has no requirements.txt: point it at a Chainlit "
            "app directory (the app file and its requirements.txt)."
        )
    files = []
    digest = hashlib.sha256()
    for path in sorted(directory.rglob("*")):
        rel = path.relative_to(directory)
        if (
            not path.is_file()
            or SKIPPED_DIRS.intersection(rel.parts[:-1])
            or rel.name in SKIPPED_FILES
            or path.suffix in SKIPPED_SUFFIXES
        ):
            continue
        digest.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
        files.append(
            {"path": rel.as_posix(), "src": str(path), "mode": oct(path.stat().st_mode & 0o777)}
        )
    return {"files": files, "hash": digest.hexdigest()[:16]}


def image_source(
    directory: Path, base_image: str, asyncpg_requirement: str, generic_dockerfile: str
) -> dict[str, Any]:
    """app_source plus what the image is built with, and the tag naming it."""
    source = app_source(directory)
    requirements = (directory / "requirements.txt").read_text()
    adds_asyncpg = not ASYNCPG_LINE.search(requirements)
    has_dockerfile = any(f["path"] == "Dockerfile" for f in source["files"])
    inputs = [
        source["hash"],
        base_image,
        str(adds_asyncpg),
        asyncpg_requirement if adds_asyncpg else "",
        "" if has_dockerfile else generic_dockerfile,
    ]
    tag = hashlib.sha256("\n".join(inputs).encode()).hexdigest()[:16]
    return {
        **source,
        "requirements": requirements,
        "adds_asyncpg": adds_asyncpg,
        "has_dockerfile": has_dockerfile,
        "tag": tag,
    }


class LookupModule(LookupBase):
    def run(self, terms: list[str], variables: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
        self.set_options(var_options=variables, direct=kwargs)
        return [
            image_source(
                Path(term).expanduser().resolve(),
                self.get_option("base_image"),
                self.get_option("asyncpg_requirement"),
                self.get_option("generic_dockerfile"),
            )
            for term in terms
        ]
