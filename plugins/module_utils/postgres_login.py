"""PostgreSQL login options shared by every module of the collection: one
``login_*`` vocabulary (as community.postgresql has it), one mapping to
psycopg2's connection arguments, one check that the driver imports.
Documented once in doc_fragments/postgres_login.py."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.database_url import (
    DatabaseUrl,
    host_side,
)

try:
    import psycopg2

    PSYCOPG2_IMPORT_ERROR: ImportError | None = None
except ImportError as exc:
    psycopg2 = None
    PSYCOPG2_IMPORT_ERROR = exc

# What a failed connection or query raises (nothing to catch without the driver).
DRIVER_ERRORS: tuple[type[Exception], ...] = (psycopg2.Error,) if psycopg2 else ()
SSL_MODES = ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


def argument_spec(**overrides: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The login options, with per-module changes (a default, required) applied."""
    spec: dict[str, dict[str, Any]] = {
        "login_db": {"type": "str", "aliases": ["db"]},
        "login_user": {"type": "str", "default": "postgres"},
        "login_password": {"type": "str", "no_log": True},
        "login_host": {"type": "str"},
        "login_unix_socket": {"type": "path"},
        "login_port": {"type": "int", "default": 5432, "aliases": ["port"]},
        "ssl_mode": {"type": "str", "default": "prefer", "choices": SSL_MODES},
        "ca_cert": {"type": "path", "aliases": ["ssl_rootcert"]},
        "connect_timeout": {"type": "int", "default": 10},
    }
    for name, change in overrides.items():
        spec[name] = {**spec[name], **change}
    return spec


def connect_kwargs(params: Mapping[str, Any], application_name: str) -> dict[str, Any]:
    """psycopg2.connect() keyword arguments from the login options."""
    kwargs: dict[str, Any] = {
        "dbname": params["login_db"],
        "user": params["login_user"],
        "port": params["login_port"],
        "sslmode": params.get("ssl_mode") or "prefer",
        "connect_timeout": params.get("connect_timeout") or 10,
        "application_name": application_name,
    }
    host = params.get("login_unix_socket") or params.get("login_host")
    if host:
        kwargs["host"] = host
    if params.get("login_password"):
        kwargs["password"] = params["login_password"]
    if params.get("ca_cert"):
        kwargs["sslrootcert"] = params["ca_cert"]
    return kwargs


def from_url(url: DatabaseUrl, login_host: str = "") -> dict[str, Any]:
    """The login options for the database of an app's URL, as the Docker host
    reaches it (see database_url.host_side)."""
    return {
        "login_host": host_side(url.host, login_host),
        "login_port": url.port,
        "login_db": url.database,
        "login_user": url.user,
        "login_password": url.password,
        "ssl_mode": url.sslmode or "prefer",
    }


def connect(params: Mapping[str, Any], application_name: str) -> Any:
    """A psycopg2 connection; raises RuntimeError when psycopg2 is missing."""
    if psycopg2 is None:
        raise RuntimeError(
            "psycopg2 is missing on the host (Debian/Ubuntu package python3-psycopg2)"
        )
    return psycopg2.connect(**connect_kwargs(params, application_name))
