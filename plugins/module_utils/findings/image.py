"""Findings about what the app's image holds and what its code declares:
asyncpg, Chainlit's version, authentication, an obsolete config section, and
whether it is the image of the current source."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils import chainlit_versions
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.catalogue import (
    entry,
    make,
    run,
)

CONCERN = "image"
DEPLOY = run("deploy")
AUTH_CALLBACKS = "password_auth_callback, header_auth_callback or oauth_callback"

entry(
    "image_unusable",
    CONCERN,
    "troubleshoot cannot run Python in the app's image",
    "The image is missing, broken, or has no python on its PATH.",
    f"Run {DEPLOY} to build and check the image.",
)
entry(
    "asyncpg_missing",
    CONCERN,
    "POST /login answers 500; the log says No module named 'asyncpg'",
    "Chainlit's data layer talks to PostgreSQL through asyncpg, which chainlit does not install "
    "(only its custom-data extra does): every data-layer call raises ModuleNotFoundError and "
    "POST /login answers 500.",
    "Add asyncpg to the app's requirements.txt (the chainlit_app role adds "
    f"chainlit_app_asyncpg_requirement when it is missing) and run {DEPLOY}, which rebuilds and "
    "checks the image.",
)
entry(
    "chainlit_version_mismatch",
    CONCERN,
    "nothing visible at first; writes fail on columns this Chainlit does not expect",
    "The image was replaced or rebuilt outside the deployment: the schema was migrated and is "
    "checked for the release the deployment recorded, and another release may read or write "
    "other columns.",
    "Pin the release the app should run in its requirements.txt (chainlit==X.Y.Z) and run "
    f"{DEPLOY}: it migrates the schema for that release, builds, checks and switches.",
)
entry(
    "chainlit_version_unsupported",
    CONCERN,
    "depends on the release: login tokens in the log (2.0.6), no data layer at all (2.7.x "
    "without google-cloud-storage, 1.x with DATABASE_URL), or threads that fail to save",
    "The image's Chainlit is outside the releases whose data layer this collection's schema and "
    "checks are derived from (2.0.601 to 2.12.x), or is a release known to be broken.",
    "Pin a supported release in the app's requirements.txt (the latest patch of its line, e.g. "
    f"chainlit==2.12.0) and run {DEPLOY}.",
)
entry(
    "obsolete_persistence_section",
    CONCERN,
    "config.toml has [persistence] enabled = true, yet that changes nothing",
    "Chainlit 2.x has no [persistence] setting and ignores it: persistence switches on with "
    "DATABASE_URL. The section misleads whoever reads it.",
    f"Remove the [persistence] section from the app's .chainlit/config.toml and run {DEPLOY}.",
)
entry(
    "no_auth_callback",
    CONCERN,
    "no login page, and the History sidebar stays empty",
    "Without an auth callback Chainlit writes threads with no user, and /project/threads "
    "answers 401: the History sidebar stays empty.",
    "Add a @cl.password_auth_callback, @cl.header_auth_callback or @cl.oauth_callback to the "
    f"app (see the reference app's app.py) and run {DEPLOY}.",
)
entry(
    "stale_image",
    CONCERN,
    "a fix in the app's source or requirements has no effect",
    "The container was created from another image than the current source's: an older build "
    "(a cached image) or one built or changed by hand, so a fix in the source (app, "
    "requirements, Dockerfile, base image) is not what runs.",
    f"Run {DEPLOY}: it builds the image of the current source under its hash tag and releases it.",
)


def findings(facts: Mapping[str, Any], logs: Mapping[str, str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    probe = facts.get("probe")
    image = facts.get("image_name", "the image")
    if facts.get("probe_error"):
        out.append(
            make("image_unusable", f"cannot run Python in {image}: {facts['probe_error'][:200]}")
        )
    if probe:
        out += _probe_findings(facts, probe, image, logs)
    auth = _auth_finding(facts, probe)
    if auth:
        out.append(auth)
    stale = _stale(facts)
    if stale:
        out.append(stale)
    return out


def _probe_findings(
    facts: Mapping[str, Any], probe: Mapping[str, Any], image: str, logs: Mapping[str, str]
) -> list[dict[str, str]]:
    out = []
    if not probe.get("asyncpg"):
        out.append(
            make(
                "asyncpg_missing",
                f"asyncpg does not import in {image} ({probe.get('asyncpg_error', '')})"
                + (
                    f"; the app log says: {logs['asyncpg_missing']}"
                    if "asyncpg_missing" in logs
                    else ""
                ),
            )
        )
    expected = facts.get("expected_chainlit_version", "")
    version = probe.get("chainlit_version", "")
    if version and chainlit_versions.problem(version):
        out.append(
            make(
                "chainlit_version_unsupported",
                f"{image}: {chainlit_versions.problem(version)}",
            )
        )
    elif expected and version != expected:
        out.append(
            make(
                "chainlit_version_mismatch",
                f"{image} has chainlit {version or '(none)'}, expected {expected}",
            )
        )
    if probe.get("persistence_section"):
        out.append(
            make(
                "obsolete_persistence_section",
                f"{probe.get('app_dir', '/app')}/.chainlit/config.toml in {image} has a "
                "[persistence] section",
            )
        )
    return out


def _auth_finding(facts: Mapping[str, Any], probe: Mapping[str, Any] | None) -> dict | None:
    auth = facts.get("auth_config")
    auth_on = None
    if isinstance(auth, Mapping):
        auth_on = bool(
            auth.get("passwordAuth") or auth.get("headerAuth") or auth.get("oauthProviders")
        )
    elif probe:
        auth_on = bool(probe.get("auth_callbacks"))
    if auth_on is not False:
        return None
    evidence = []
    if isinstance(auth, Mapping):
        evidence.append("GET /auth/config reports no password, header or OAuth login")
    if probe:
        evidence.append(
            f"no {AUTH_CALLBACKS} in the {probe.get('python_files', 0)} Python files of "
            f"{probe.get('app_dir', '/app')}"
        )
    return make("no_auth_callback", "the app has no authentication: " + "; ".join(evidence))


def _stale(facts: Mapping[str, Any]) -> dict[str, str] | None:
    running_image = facts.get("running_image", "")
    expected_image = facts.get("expected_image", "")
    running_id, expected_id = facts.get("running_image_id"), facts.get("expected_image_id")
    stale = (
        running_id != expected_id if running_id and expected_id else running_image != expected_image
    )
    if not (running_image and expected_image and stale):
        return None
    built = facts.get("expected_image_present")
    return make(
        "stale_image",
        f"the container runs {running_image}, but the current app source "
        f"({facts.get('app_src', '?')}) builds {expected_image}"
        + (" (built, present on the host)" if built else " (not built on this host)"),
        "The new image exists but the container was not recreated." if built else "",
    )
