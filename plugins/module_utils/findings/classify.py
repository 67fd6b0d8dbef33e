"""All of troubleshoot's findings from the facts its probes gathered, in the
order an operator should read them."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils import (
    database_url,
    dotenv,
    postgres_login,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings import (
    app_database,
    container,
    database,
    env,
    image,
    proxy,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.evidence import (
    log_evidence,
)

# Hosts naming the app host itself, from the container or from the host.
LOCAL_DB_HOSTS = {database_url.CONTAINER_HOST_ALIAS, "localhost", "127.0.0.1", "::1"}
CONCERNS = (
    env.CONCERN,
    container.CONCERN,
    proxy.CONCERN,
    image.CONCERN,
    database.CONCERN,
    app_database.CONCERN,
)


def findings(facts: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every fault the probes show, each with its cause and fix, each named
    once; empty when all is well."""
    logs = log_evidence(facts.get("logs", ""))
    out = container.findings(facts, logs)
    engine_down = bool(facts.get("engine_error"))
    out += proxy.findings(facts, container_ok=not out)
    if not engine_down:
        out += env.findings(facts)
        out += image.findings(facts, logs)
    out += database.findings(facts, logs)
    out += app_database.findings(facts, {item["id"] for item in out})
    unique: dict[str, dict[str, str]] = {}
    for item in out:
        unique.setdefault(item["id"], item)
    return list(unique.values())


def database_url_of(env_text: str | None, running: Mapping[str, Any] | None) -> dict[str, str]:
    """The URL of the app's database and where it was found: the running container's
    DATABASE_URL, else the .env's; else the CHAINLIT_DATABASE_URL meant as it (so the
    database is checked even while the variable has the wrong name)."""
    config = (running or {}).get("Config") or {}
    places = [
        ("the container", dotenv.from_list(config.get("Env"))),
        ("the .env", dotenv.parse(env_text)),
    ]
    for name in ("DATABASE_URL", "CHAINLIT_DATABASE_URL"):
        for place, values in places:
            if values.get(name):
                source = place if name == "DATABASE_URL" else f"{name} in {place}"
                return {"url": dotenv.unquote(values[name]), "source": source}
    return {"url": "", "source": ""}


def db_params(url: str, login_host: str = "") -> dict[str, Any]:
    """The login options for the URL's database as this host reaches it, with the
    URL's own host and whether the server is on this host."""
    parsed = database_url.parse(url)
    unusable = {"no_scheme", "port", "no_host", "empty"} & set(parsed.codes())
    return {
        **postgres_login.from_url(parsed, login_host),
        **({"login_host": ""} if unusable else {}),
        "url_host": parsed.host,
        "port": parsed.port,
        "db": parsed.database,
        "user": parsed.user,
        "local": parsed.host in LOCAL_DB_HOSTS,
    }
