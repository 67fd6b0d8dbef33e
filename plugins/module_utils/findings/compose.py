"""Findings about a Chainlit deployment this collection did not make: a
Docker Compose project (or a plain container), as the original analysis
describes it (a service app-agent, a service db-persist). Each fix is written
for a compose user: the line to change, the command to run. Read from the
facts of module chainlit_compose_facts; nothing here quotes a secret (URLs
are masked, variable values never shown)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils import database_url
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.catalogue import (
    entry,
    make,
)

CONCERN = "compose"
UP = "`docker compose up -d {service}`"
BUILD = "`docker compose build --no-cache {service} && docker compose up -d {service}`"
TABLES = ("User", "Thread", "Step", "Element", "Feedback")
# Chainlit's schema, as the chainlit_app role applies it: on the controller,
# in this collection (the findings are classified there, by a filter).
SCHEMA_DIR = Path(__file__).resolve().parents[3] / "roles" / "chainlit_app" / "files" / "schema"

entry(
    "compose_engine_down",
    CONCERN,
    "the app does not answer; `docker compose ps` says it cannot connect to the Docker daemon",
    "The Docker engine on this host does not answer, so no container runs.",
    "`systemctl start docker` (`journalctl -u docker` says why it stopped), then "
    "`docker compose up -d` in the project's directory.",
)
entry(
    "compose_project_not_found",
    CONCERN,
    "troubleshoot finds no compose file and no container of the project",
    "The directory holds no compose.yaml or docker-compose.yml, and no container carries the "
    "project's label (it was never started here, or under another project name).",
    "Give the directory with the compose file (troubleshoot_compose_dir), or the name "
    "`docker compose ls --all` shows (troubleshoot_compose_project).",
)
entry(
    "compose_app_not_found",
    CONCERN,
    "troubleshoot finds the project but not the Chainlit app in it",
    "No service has DATABASE_URL (or CHAINLIT_DATABASE_URL) in its environment or runs `chainlit`.",
    "Name the app's service: troubleshoot_compose_app_service (e.g. app-agent).",
)
entry(
    "compose_wrong_database_variable",
    CONCERN,
    "login works, History stays empty; the compose file sets CHAINLIT_DATABASE_URL",
    "Chainlit reads only DATABASE_URL; CHAINLIT_DATABASE_URL is read nowhere, so no data layer "
    "starts and nothing is saved.",
    "In {where}, rename CHAINLIT_DATABASE_URL to DATABASE_URL (keep the value), then " + UP + ".",
)
entry(
    "compose_database_url_missing",
    CONCERN,
    "login works, History stays empty; the app's service has no DATABASE_URL",
    "Without DATABASE_URL (or a @cl.data_layer) Chainlit starts no data layer.",
    "Add `DATABASE_URL=postgresql://<user>:<password>@<database service>:5432/<db>` under the "
    "`environment:` of service {service}, then " + UP + ".",
)
entry(
    "compose_asyncpg_missing",
    CONCERN,
    "nothing is saved; the app's log says `No module named 'asyncpg'`",
    "Chainlit's data layer connects with asyncpg, which chainlit does not install; "
    "psycopg2-binary does not replace it.",
    "Add a line `asyncpg>=0.29` to {requirements}, then " + BUILD + ".",
)
entry(
    "compose_image_stale",
    CONCERN,
    "requirements.txt was fixed, but the running app still lacks what it lists",
    "The image the app's container runs was built before its requirements.txt changed "
    "(a cached build, or a container not recreated after the build).",
    BUILD + ".",
)
entry(
    "compose_persistence_section",
    CONCERN,
    "`[persistence] enabled = true` in .chainlit/config.toml, and still no History",
    "Chainlit 2.x has no [persistence] section: it reads none of it. History needs "
    "DATABASE_URL and a logged-in user.",
    "Delete the [persistence] section from {service}'s .chainlit/config.toml (it changes "
    "nothing; leaving it misleads).",
)
entry(
    "compose_no_auth",
    CONCERN,
    "chats work but there is no History sidebar",
    "Chainlit keeps and lists chats only for a logged-in user: the app needs an auth callback "
    "and CHAINLIT_AUTH_SECRET.",
    "Add a `@cl.password_auth_callback` (or OAuth or header callback) to the app, and "
    "`CHAINLIT_AUTH_SECRET=<output of chainlit create-secret>` under the `environment:` of "
    "service {service}, then " + BUILD + ".",
)
entry(
    "compose_app_not_running",
    CONCERN,
    "http://localhost:8502 does not answer; `docker compose ps` shows the app exited or restarting",
    "The app's container is not running.",
    "`docker compose logs --tail 50 {service}` says why; then " + UP + ".",
)
entry(
    "compose_database_down",
    CONCERN,
    "nothing is saved; `docker compose ps {db}` does not show it running",
    "The database's container is stopped, restarting or was never created.",
    "`docker compose up -d {db}` (`docker compose logs --tail 50 {db}` says why it stopped).",
)
entry(
    "compose_database_unreachable",
    CONCERN,
    "nothing is saved; the log says the database's host is unknown or refuses connections",
    "From the app's container the URL's host and port do not answer. Inside compose the host "
    "is the database's service name ({db}) and the port its container port (5432), not "
    "localhost or the published port.",
    "Write the URL as postgresql://<user>:<password>@{db}:5432/<db> under the `environment:` "
    "of {service}, with both services on the same network, then " + UP + ".",
)
entry(
    "compose_database_login_failed",
    CONCERN,
    "nothing is saved; PostgreSQL's log says `password authentication failed`",
    "The user or password in the URL is not the database's. POSTGRES_USER and "
    "POSTGRES_PASSWORD take effect only when the database's volume is first created: changing "
    "them later changes nothing.",
    "Put the database's real user and password in the URL, or set it in the database: "
    "`docker compose exec {db} psql -U <user> -c \"ALTER ROLE <user> PASSWORD '...'\"`; "
    "then " + UP + ".",
)
entry(
    "compose_database_not_persistent",
    CONCERN,
    "chats are saved, then gone after `docker compose down` and `up`, or after the database's "
    "container is recreated",
    "The database's data directory is on no named volume or bind mount: the chats live in the "
    "container's own layer, or in an anonymous volume a new container does not get back. "
    "A volume mounted at another path (a typo, or PGDATA elsewhere) does the same.",
    "First dump it: `docker compose exec -T {db} pg_dump -U <user> -Fc <db> > chainlit.dump`. "
    "Then mount a named volume at {pgdata} under service {db} (`volumes: [pgdata:{pgdata}]`, "
    "and `pgdata:` under the top-level `volumes:`), `docker compose up -d {db}`, and restore "
    "the dump if the tables are empty: `docker compose exec -T {db} pg_restore -U <user> -d "
    "<db> --no-owner < chainlit.dump`.",
)
entry(
    "compose_tables_missing",
    CONCERN,
    'nothing is saved; the log says `relation "Thread" does not exist`',
    "Chainlit 2.x never creates its tables: its data layer expects them to exist.",
    "Create them with Chainlit's schema, file by file in name order: `docker compose exec -T "
    "{db} psql -U <user> -d <db> -v ON_ERROR_STOP=1 < FILE` for each FILE of {schema_dir} "
    "(on the Ansible controller, in this collection).",
)


def _url_host(url: str) -> str:
    return database_url.parse(url).host if url else ""


def findings(facts: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every fault of the compose deployment the facts show, in the order an
    operator should fix them; empty when all is well."""
    if facts.get("engine_error"):
        return [make("compose_engine_down", f"The Docker engine: {facts['engine_error']}.")]
    services = facts.get("services") or {}
    where = facts.get("project_dir") or facts.get("project") or ""
    if not services:
        return [make("compose_project_not_found", f"No compose file or container for {where}.")]
    app = services.get(facts.get("app_service") or "")
    if not app:
        return [
            make(
                "compose_app_not_found",
                f"Services {', '.join(sorted(services))}: none is the Chainlit app.",
            )
        ]
    service = app["name"]
    db_name = facts.get("db_service") or _url_host(facts.get("url", "")) or "<database service>"
    fields = {
        "service": service,
        "db": db_name,
        "requirements": facts.get("requirements_file") or "requirements.txt",
        "schema_dir": facts.get("schema_dir") or str(SCHEMA_DIR),
    }
    out: list[dict[str, str]] = []
    out += _settings(facts, app, fields)
    out += _image(facts, app, fields)
    out += _database(facts, app, services.get(facts.get("db_service") or ""), fields)
    return out


def _settings(
    facts: Mapping[str, Any], app: Mapping[str, Any], fields: dict[str, str]
) -> list[dict[str, str]]:
    out = []
    env = app.get("env") or {}
    if facts.get("url_variable") == "CHAINLIT_DATABASE_URL" and not env.get("DATABASE_URL"):
        lines = [
            f"{item['file']}:{item['line']}"
            for item in facts.get("variable_lines") or []
            if item["variable"] == "CHAINLIT_DATABASE_URL"
        ]
        where = ", ".join(lines) or f"the `environment:` of service {fields['service']}"
        out.append(
            make(
                "compose_wrong_database_variable",
                f"Service {fields['service']} has CHAINLIT_DATABASE_URL "
                f"({database_url.mask(facts.get('url', ''))}) and no DATABASE_URL ({where}).",
                **fields,
                where=where,
            )
        )
    elif not facts.get("url"):
        out.append(
            make(
                "compose_database_url_missing",
                f"Service {fields['service']} has no DATABASE_URL.",
                **fields,
            )
        )
    if not app.get("running"):
        status = app.get("status") or "absent"
        out.append(
            make(
                "compose_app_not_running",
                f"Container {app.get('container') or fields['service']} is {status}"
                f" (exit code {app.get('exit_code', 0)}).",
                **fields,
            )
        )
    probe = facts.get("probe") or {}
    if probe and not probe.get("auth_callbacks"):
        out.append(
            make(
                "compose_no_auth",
                f"The app's code (in {probe.get('app_dir', 'its image')}) declares no auth "
                "callback.",
                **fields,
            )
        )
    elif probe and not env.get("CHAINLIT_AUTH_SECRET"):
        out.append(
            make(
                "compose_no_auth",
                f"Service {fields['service']} has no CHAINLIT_AUTH_SECRET.",
                **fields,
            )
        )
    return out


def _image(
    facts: Mapping[str, Any], app: Mapping[str, Any], fields: dict[str, str]
) -> list[dict[str, str]]:
    probe = facts.get("probe")
    if not probe:
        return []
    out = []
    missing = probe.get("missing_distributions") or []
    old_container = (
        app.get("image_id")
        and app.get("container_image_id")
        and app["image_id"] != app["container_image_id"]
    )
    if missing:
        out.append(
            make(
                "compose_image_stale",
                f"{fields['requirements']} lists {', '.join(missing)}, which the image "
                f"{app.get('image') or ''} of container {app.get('container')} does not have.",
                **fields,
            )
        )
    elif old_container:
        out.append(
            make(
                "compose_image_stale",
                f"Container {app.get('container')} runs an older image than "
                f"{app.get('image')} (built since, not recreated).",
                **fields,
            )
        )
    if not probe.get("asyncpg") and "asyncpg" not in missing:
        out.append(
            make(
                "compose_asyncpg_missing",
                f"asyncpg does not import in the app's image ({probe.get('asyncpg_error', '')}),"
                f" and {fields['requirements']} does not list it.",
                **fields,
            )
        )
    if probe.get("persistence_section"):
        out.append(
            make(
                "compose_persistence_section",
                f"{probe.get('app_dir', '')}/.chainlit/config.toml has a [persistence] section.",
                **fields,
            )
        )
    return out


def _database(
    facts: Mapping[str, Any],
    app: Mapping[str, Any],
    db: Mapping[str, Any] | None,
    fields: dict[str, str],
) -> list[dict[str, str]]:
    url = facts.get("url") or ""
    if not url:
        return []
    masked = database_url.mask(url)
    if db is not None and not db.get("running"):
        return [
            make(
                "compose_database_down",
                f"Container {db.get('container') or fields['db']} is {db.get('status')}.",
                **fields,
            )
        ]
    reach = facts.get("reach") or {}
    if reach.get("ok") is False:
        return [
            make(
                "compose_database_unreachable",
                f"From {app.get('container')}, {masked} does not answer: {reach.get('error', '')}.",
                **fields,
            )
        ]
    out = _volume(db, fields) if db is not None else []
    check = facts.get("db_check") or {}
    if check.get("ran") and not check.get("ok"):
        return [
            *out,
            make(
                "compose_database_login_failed",
                f"{fields['db']} refuses the URL's login ({masked}): {check.get('error', '')}.",
                **fields,
            ),
        ]
    if check.get("ok"):
        missing = [table for table in TABLES if table not in (check.get("tables") or [])]
        if missing:
            others = sorted(
                t for t in check.get("tables") or [] if t.lower() in {"threads", "steps", "users"}
            )
            extra = f" (it has {', '.join(others)}: not Chainlit 2.x's names)" if others else ""
            return [
                *out,
                make(
                    "compose_tables_missing",
                    f"The database of {masked} lacks Chainlit's tables "
                    f"{', '.join(missing)}{extra}.",
                    **fields,
                ),
            ]
    return out


ANONYMOUS = re.compile(r"[0-9a-f]{64}")


def _volume(db: Mapping[str, Any], fields: dict[str, str]) -> list[dict[str, str]]:
    """The database's data directory must be on a named volume or a bind mount."""
    pgdata = (db.get("env") or {}).get("PGDATA") or "/var/lib/postgresql/data"
    covering = [
        mount
        for mount in db.get("mounts") or []
        if pgdata == mount.get("Destination", "").rstrip("/")
        or pgdata.startswith(mount.get("Destination", "").rstrip("/") + "/")
    ]
    kept = [
        mount
        for mount in covering
        if mount.get("Type") == "bind"
        or (mount.get("Type") == "volume" and not ANONYMOUS.fullmatch(mount.get("Name", "")))
    ]
    if kept:
        return []
    container = db.get("container") or fields["db"]
    where = (
        f"an anonymous volume ({covering[0].get('Name', '')[:12]})"
        if covering
        else "no volume (mounted: "
        + (", ".join(m.get("Destination", "") for m in db.get("mounts") or []) or "nothing")
        + ")"
    )
    return [
        make(
            "compose_database_not_persistent",
            f"{container} keeps its data directory {pgdata} on {where}.",
            **{**fields, "pgdata": pgdata},
        )
    ]


def notes(facts: Mapping[str, Any]) -> list[str]:
    """What could not be checked, and why."""
    out = []
    if facts.get("engine_error") or not facts.get("services"):
        return out
    if facts.get("config_error"):
        out.append(f"the compose file ({facts['config_error']})")
    if facts.get("app_service") and facts.get("probe") is None:
        out.append(f"the app's image (no probe could run: {facts.get('probe_error', '')})")
    check = facts.get("db_check")
    if check and not check.get("ran"):
        out.append(f"the login and the tables ({check.get('error', '')})")
    elif check is None and facts.get("url") and facts.get("db_service"):
        out.append("the login and the tables (the database's container is not running)")
    elif check is None and facts.get("url"):
        host = _url_host(facts["url"])
        out.append(f"the login and the tables (the database host {host} is no container here)")
    return out
