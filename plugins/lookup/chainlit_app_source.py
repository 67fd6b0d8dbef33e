"""Lookup: the files of a Chainlit app directory on the controller and the tag
of its image (module_utils/app_image.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.app_image import (
    AppSourceError,
    image_source,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.wheelhouse import listing

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
  - Fails, naming the variable and the fix, when the directory has no
    requirements.txt or lacks the entry file.
options:
  _terms:
    description: The app directory.
    required: true
  module:
    description: The app's entry file, relative to the directory.
    type: str
    default: app.py
  base_image:
    description: The build's base image.
    type: str
    default: ""
  asyncpg_requirement:
    description: The requirement added when requirements.txt lacks asyncpg.
    type: str
    default: ""
  wheelhouse:
    description: A wheelhouse directory on the controller the image is built from; empty for none.
    type: str
    default: ""
"""

RETURN = r"""
_raw:
  description: >-
    One dict: C(files) (list of {path, src, mode}), C(hash) of the files,
    C(dir) (the directory, absolute), C(requirements) (text of requirements.txt), C(adds_asyncpg),
    C(adds_requirements) (list of {requirement, why}: what the pinned release
    imports but a fresh install lacks), C(chainlit_version) and
    C(chainlit_version_error), C(has_dockerfile), C(dockerfile) (the generic
    Dockerfile when the app has none, else empty) and C(tag) (16 hex digits).
  type: list
"""


class LookupModule(LookupBase):
    def run(self, terms: list[str], variables: Any = None, **kwargs: Any) -> list[dict[str, Any]]:
        self.set_options(var_options=variables, direct=kwargs)
        wheelhouse = self.get_option("wheelhouse")
        if wheelhouse and not Path(wheelhouse).is_dir():
            raise AnsibleLookupError(
                f"chainlit_app_wheelhouse '{wheelhouse}' is not a directory on the controller: "
                "make it with the wheelhouse playbook (chainlit_deploy.stack.wheelhouse), or "
                "leave the variable empty to build from the package index."
            )
        try:
            return [
                image_source(
                    Path(term).expanduser().resolve(),
                    self.get_option("module"),
                    self.get_option("base_image"),
                    self.get_option("asyncpg_requirement"),
                    listing(Path(wheelhouse)) if wheelhouse else "",
                )
                for term in terms
            ]
        except AppSourceError as error:
            raise AnsibleLookupError(str(error)) from error
