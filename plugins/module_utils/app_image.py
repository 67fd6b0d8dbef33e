"""The image of a Chainlit app: which files of its directory go into it, the
Dockerfile used when the app brings none, and the tag that names the image
after everything that goes into it. The chainlit_app role builds and tags
with it; the troubleshoot role compares the running image with it."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils import chainlit_versions

SKIPPED_DIRS = {".git", "__pycache__", ".files", ".venv", "venv", "node_modules", ".pytest_cache"}
SKIPPED_FILES = {".env"}
SKIPPED_SUFFIXES = {".pyc", ".pyo"}
# Besides requirements.txt, where an app with its own Dockerfile may pin chainlit.
LOCK_FILES = ("poetry.lock", "uv.lock", "pdm.lock", "requirements.lock")
ASYNCPG_LINE = re.compile(r"^\s*asyncpg\b", re.IGNORECASE | re.MULTILINE)

# The image of an app without a Dockerfile: a virtualenv built in a first
# stage (where a CA bundle for pip may sit in certs/), copied into a clean
# final stage that runs as an unprivileged user.
GENERIC_DOCKERFILE = """\
# Written by chainlit-deploy: generic image for a Chainlit app that brings no Dockerfile.
ARG BASE_IMAGE=python:3.12-slim

FROM ${{BASE_IMAGE}} AS build
# Labelled like the final image, and as the build stage: the role keeps the
# last one as the app's build cache and prunes the others.
ARG CHAINLIT_DEPLOY_APP=
LABEL io.chainlit-deploy.app=${{CHAINLIT_DEPLOY_APP}} io.chainlit-deploy.stage=build
ARG PIP_INDEX_URL=
# certs/ (a CA bundle for pip) and wheels/ (a wheelhouse) are optional.
COPY requirements.txt certs* wheels* /tmp/build/
RUN set -eu; \\
    if [ -f /tmp/build/ca-bundle.crt ]; then export PIP_CERT=/tmp/build/ca-bundle.crt; fi; \\
    if [ -n "${{PIP_INDEX_URL}}" ]; then export PIP_INDEX_URL; else unset PIP_INDEX_URL; fi; \\
    if ls /tmp/build/*.whl >/dev/null 2>&1; then set -- --no-index --find-links /tmp/build; \\
    else set --; fi; \\
    python3 -m venv /opt/venv; \\
    /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check "$@" \\
        -r /tmp/build/requirements.txt

FROM ${{BASE_IMAGE}}
ENV PATH=/opt/venv/bin:$PATH PYTHONUNBUFFERED=1 CI=false
RUN useradd --system --user-group --uid 10001 --home-dir /app --no-create-home \\
        --shell /usr/sbin/nologin chainlit
COPY --from=build /opt/venv /opt/venv
WORKDIR /app
COPY . /app
# Chainlit writes its config, translations and chainlit.md at startup when
# they are missing: write them now, so the app can run on a read-only root.
RUN rm -rf /app/certs /app/wheels \\
    && python -c "import chainlit.config as c, chainlit.markdown as m; \\
        m.init_markdown(c.APP_ROOT)" \\
    && chown -R chainlit:chainlit /app
USER chainlit
EXPOSE 8000
CMD ["chainlit", "run", "{module}", "--headless", "--host", "0.0.0.0", "--port", "8000"]
"""


class AppSourceError(ValueError):
    """The app directory cannot be built; the message names the variable and the fix."""


def generic_dockerfile(module: str) -> str:
    return GENERIC_DOCKERFILE.format(module=module)


def app_files(directory: Path) -> dict[str, Any]:
    """The files that go into the image, and a hash of their paths and contents."""
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
    return {"files": files, "hash": digest.hexdigest()[:16], "dir": str(directory)}


def image_source(
    directory: Path, module: str, base_image: str, asyncpg_requirement: str, wheelhouse: str = ""
) -> dict[str, Any]:
    """What the image of the app in ``directory`` is built from, and its tag
    (``wheelhouse``: what the build installs from instead of an index)."""
    if not directory.is_dir():
        raise AppSourceError(
            f"chainlit_app_src '{directory}' is not a directory on the controller: point it at "
            "your Chainlit app (its entry file and requirements.txt)."
        )
    if not (directory / "requirements.txt").is_file():
        raise AppSourceError(
            f"chainlit_app_src '{directory}' has no requirements.txt: point it at a Chainlit "
            "app directory (the app file and its requirements.txt)."
        )
    source = app_files(directory)
    paths = {f["path"] for f in source["files"]}
    if module not in paths:
        raise AppSourceError(
            f"chainlit_app_module '{module}' is not a file of chainlit_app_src '{directory}': "
            "set chainlit_app_module to the app's entry file, relative to that directory "
            "(the image check imports it before the image may serve)."
        )
    requirements = (directory / "requirements.txt").read_text()
    pins = [requirements] + [
        (directory / name).read_text(errors="replace") for name in LOCK_FILES if name in paths
    ]
    chainlit_version, chainlit_version_error = chainlit_versions.from_requirements(pins)
    adds_asyncpg = not ASYNCPG_LINE.search(requirements)
    adds = chainlit_versions.missing_dependencies(chainlit_version, requirements)
    has_dockerfile = "Dockerfile" in paths
    inputs = [
        source["hash"],
        base_image,
        str(adds_asyncpg),
        asyncpg_requirement if adds_asyncpg else "",
        *[added["requirement"] for added in adds],
        "" if has_dockerfile else generic_dockerfile(module),
        wheelhouse,
    ]
    return {
        **source,
        "requirements": requirements,
        "chainlit_version": chainlit_version,
        "chainlit_version_error": chainlit_version_error,
        "adds_asyncpg": adds_asyncpg,
        # What the release imports but a fresh install lacks (e.g. sniffio
        # before 2.6): added to requirements.txt beside asyncpg.
        "adds_requirements": adds,
        "has_dockerfile": has_dockerfile,
        "dockerfile": "" if has_dockerfile else generic_dockerfile(module),
        "tag": hashlib.sha256("\n".join(inputs).encode()).hexdigest()[:16],
    }
