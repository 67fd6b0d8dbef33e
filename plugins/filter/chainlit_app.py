"""Filters of the collection for the app's settings: the database URL, the
.env, password hashes and the input checks that refuse a deployment which
could not persist chats. The rules themselves live in module_utils."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils import (
    chainlit_versions,
    database_url,
    dotenv,
    postgres_login,
    release,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.evidence import (
    nginx_upstream_ports,
    published,
)

# The reference app's hash format (app/chainlit_app_users.py): scrypt$N$r$p$SALT$KEY.
SCRYPT_N = 2**15
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
KEY_BYTES = 32
# Variables the role writes itself; chainlit_app_env may not set them.
ROLE_OWNED = {
    "DATABASE_URL": "set chainlit_app_database_url, or the chainlit_app_db_* variables",
    "CHAINLIT_AUTH_SECRET": "set chainlit_app_auth_secret, or leave it unset to have one generated",
    "CHAINLIT_USERS": "declare the users in chainlit_app_users",
}


def url_parts(url: str) -> dict[str, Any]:
    """The URL's connection parameters, decoded, with its problems (no_log: it
    holds the password)."""
    return database_url.parse(url).as_dict()


def db_login(url: str, login_host: str = "") -> dict[str, Any]:
    """The login_* options of the modules for the database of an app's URL, as
    the Docker host reaches it (no_log: it holds the password)."""
    return postgres_login.from_url(database_url.parse(url), login_host)


def password_hash(password: str, salt_seed: str) -> str:
    """scrypt hash in the reference app's format, with a salt derived from
    salt_seed so that an unchanged password gives an unchanged .env."""
    if not password:
        raise ValueError("refusing to hash an empty password")
    salt = hashlib.sha256(salt_seed.encode()).digest()[:SALT_BYTES]
    key = hashlib.scrypt(
        password.encode(),
        salt=salt,
        n=SCRYPT_N,
        r=SCRYPT_R,
        p=SCRYPT_P,
        maxmem=256 * 1024 * 1024,
        dklen=KEY_BYTES,
    )

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode().rstrip("=")

    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${b64(salt)}${b64(key)}"


def input_problems(
    env: Mapping[str, Any],
    url: str,
    auth_secret: str | None,
    url_variable: str = "chainlit_app_database_url",
) -> list[str]:
    """Every reason this input would deploy an app that cannot persist or
    start, each naming the variable and the fix (never a secret). Empty when
    all is well."""
    problems: list[str] = []
    if "CHAINLIT_DATABASE_URL" in env:
        problems.append(
            "chainlit_app_env sets CHAINLIT_DATABASE_URL, which Chainlit never reads: with it "
            "nothing is saved. Remove it; the role writes DATABASE_URL from chainlit_app_db_* "
            "or chainlit_app_database_url."
        )
    problems += [
        f"chainlit_app_env sets {name}, which the role writes itself: {fix}."
        for name, fix in ROLE_OWNED.items()
        if name in env
    ]
    problems += [
        f"{url_variable}: {message}." for _, message in database_url.container_problems(url)
    ]
    if not auth_secret or not str(auth_secret).strip():
        problems.append(
            "chainlit_app_auth_secret is empty: Chainlit cannot start with authentication and no "
            "secret. Leave the variable unset to have one generated once and kept in "
            "chainlit_app_credentials_dir, or set it to the output of `chainlit create-secret`."
        )
    values = {"chainlit_app_auth_secret": str(auth_secret or "")}
    values.update({f"chainlit_app_env['{k}']": str(v) for k, v in env.items()})
    for name, value in values.items():
        problems += dotenv.value_problems(name, value)
    return problems


def port_problems(port: Any, slot_ports: Any, taken: Mapping[Any, str] | None = None) -> list[str]:
    """Why the app's port and its two slot ports cannot be used, naming the
    variables; ``taken`` maps ports that something else holds to what it is."""
    problems: list[str] = []
    taken = {int(k): v for k, v in (taken or {}).items()}

    def valid(value: Any) -> bool:
        return str(value).isdigit() and 0 < int(value) < 65536

    if not valid(port):
        problems.append(f"chainlit_app_port is '{port}': give a TCP port from 1 to 65535.")
    slots = list(slot_ports) if isinstance(slot_ports, list | tuple) else []
    if len(slots) != 2 or not all(valid(s) for s in slots) or len({int(s) for s in slots}) != 2:
        problems.append(
            f"chainlit_app_slot_ports is {slot_ports}: give two different TCP ports (the blue and "
            "green containers' loopback ports, e.g. [8601, 8602])."
        )
    elif valid(port) and int(port) in {int(s) for s in slots}:
        problems.append(
            f"chainlit_app_slot_ports {slots} include chainlit_app_port {port}: nginx answers on "
            "chainlit_app_port and the containers behind it on the slot ports, so they must differ."
        )
    for name, value in [("chainlit_app_port", port)] + [
        ("chainlit_app_slot_ports", s) for s in (slots if len(slots) == 2 else [])
    ]:
        if valid(value) and int(value) in taken:
            problems.append(
                f"{name} {value} is already held on this host by {taken[int(value)]}: choose a "
                "free port (`ss -ltnp` lists those in use)."
            )
    return problems


def env_parse(text: str | None) -> dict[str, str]:
    """A .env file's text as Docker's --env-file reads it."""
    return dotenv.parse(text)


def mask_url(text: str) -> str:
    return database_url.mask(text)


def version_problems(source: Mapping[str, Any], expected: str) -> list[str]:
    """Why the app's Chainlit release cannot be deployed: ``source`` is what the
    chainlit_app_source lookup read, ``expected`` chainlit_app_expected_version."""
    pinned = source.get("chainlit_version", "")
    if expected and pinned and expected != pinned:
        return [
            f"chainlit_app_expected_version is {expected} but the app pins chainlit {pinned}: "
            "leave chainlit_app_expected_version empty to follow the app, or pin the release "
            "you mean in its requirements.txt"
        ]
    version = expected or pinned
    if not version:
        return [
            "cannot tell which Chainlit release the app runs: "
            f"{source.get('chainlit_version_error')}. "
            "The schema and the checks depend on it; when the app's own Dockerfile installs "
            "chainlit from elsewhere, set chainlit_app_expected_version to that release"
        ]
    problem = chainlit_versions.problem(version)
    return [f"{problem} (chainlit_app_src's requirements.txt)"] if problem else []


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "chainlit_release": release.contract,
            "chainlit_version_problems": version_problems,
            "chainlit_url": database_url.build,
            "chainlit_url_parts": url_parts,
            "chainlit_db_login": db_login,
            "chainlit_env_parse": env_parse,
            "chainlit_mask_url": mask_url,
            "chainlit_password_hash": password_hash,
            "chainlit_input_problems": input_problems,
            "chainlit_port_problems": port_problems,
            "chainlit_nginx_upstream_ports": nginx_upstream_ports,
            "chainlit_published_ports": lambda c: [p["port"] for p in published(c)],
        }
