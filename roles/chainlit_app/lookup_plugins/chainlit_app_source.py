"""Lookup of the chainlit_app role: the files of a Chainlit app directory on
the controller, and a hash of their names and contents (the image's tag)."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

DOCUMENTATION = r"""
name: chainlit_app_source
short_description: Files of a Chainlit app directory and a hash of them
description:
  - Lists the files of an app directory on the controller, leaving out what
    must not reach an image (VCS data, caches, virtualenvs, uploads and any
    local .env), and hashes their relative paths and contents.
options:
  _terms:
    description: The app directory.
    required: true
"""

RETURN = r"""
_raw:
  description: One dict with C(files) (list of {path, src, mode}) and C(hash) (16 hex digits).
  type: list
"""

SKIPPED_DIRS = {".git", "__pycache__", ".files", ".venv", "venv", "node_modules", ".pytest_cache"}
SKIPPED_FILES = {".env"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}


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


class LookupModule(LookupBase):
    def run(self, terms: list[str], variables: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
        return [app_source(Path(term).expanduser().resolve()) for term in terms]
