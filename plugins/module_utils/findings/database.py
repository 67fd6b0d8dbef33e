"""Findings about PostgreSQL as the app uses it: the server, the login, the
database and the schema Chainlit's data layer needs."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.app_database import (
    refine,
    refusal_finding_id,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.catalogue import (
    entry,
    make,
    run,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.evidence import (
    one_line,
)

CONCERN = "database"
DEPLOY = run("deploy")

entry(
    "postgresql_down",
    CONCERN,
    "login works, but nothing is saved or listed",
    "The server was stopped or failed to start; the app cannot save or read chats (login may "
    "still succeed: Chainlit only logs the failed user upsert).",
    "Start it (`systemctl start postgresql`) and read `journalctl -u postgresql@*` / the "
    f"PostgreSQL log for why it stopped; {DEPLOY} also starts it.",
)
entry(
    "database_unreachable",
    CONCERN,
    "troubleshoot cannot log in to the app's database from the app's host",
    "PostgreSQL does not listen where the app's host reaches it, a firewall drops the "
    "connection, or the URL names the wrong host or port.",
    "Check the URL's host and port, PostgreSQL's listen_addresses and pg_hba.conf for the app's "
    f"network (the postgres role sets them) and the firewall; run {DEPLOY}.",
)
entry(
    "wrong_db_password",
    CONCERN,
    "nothing is saved; the log says 'password authentication failed'",
    "The password in DATABASE_URL is not the role's password (the URL was edited, or the role's "
    "password was changed without redeploying the app).",
    f"Run {DEPLOY}: the postgres and chainlit_app roles share one password (the vault's, or the "
    "one generated into the credentials directory).",
)
entry(
    "database_missing",
    CONCERN,
    "nothing is saved; the log says 'database ... does not exist'",
    "The URL names another database, or it was never created or was dropped.",
    f"Run {DEPLOY} (the postgres role creates it).",
)
entry(
    "database_connect_failed",
    CONCERN,
    "nothing is saved; PostgreSQL refuses the app's connection",
    "PostgreSQL refuses the app's connection for the reason quoted.",
    f"Fix what the message names (pg_hba.conf, role, sslmode); run {DEPLOY}.",
)
entry(
    "schema_tables_missing",
    CONCERN,
    "login works; chats (or feedback) are not saved; the log says 'relation ... does not exist'",
    "Chainlit creates no tables; the schema migrations did not run on this database, or the "
    "tables were dropped.",
    f"A database the migrations never ran on: run {DEPLOY}, which applies them. Tables dropped "
    "after the migration was recorded in chainlit_schema_migrations: restore them from a backup "
    f"({run('restore')}), or delete the record and run {DEPLOY}.",
)
entry(
    "schema_columns_missing",
    CONCERN,
    "some chats or elements are not saved; the log says 'column ... does not exist'",
    "The tables come from another schema (Prisma's, or an older one) or were altered: "
    "Chainlit's INSERTs and SELECTs on them fail.",
    "Add the columns as the collection's migrations define them (ALTER TABLE ... ADD COLUMN), "
    f"then run {run('verify')}.",
)
entry(
    "schema_step_types_missing",
    CONCERN,
    "some steps are not saved; the log says 'invalid input value for enum \"StepType\"'",
    'Steps of those types cannot be saved: the "StepType" enum is older than what Chainlit writes.',
    f'ALTER TYPE "StepType" ADD VALUE for each, then run {DEPLOY}.',
)


def findings(facts: Mapping[str, Any], logs: Mapping[str, str]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    db = facts.get("db") or {}
    target = f"{db.get('url_host', '?')}:{db.get('port', '?')}"
    down = _server_down(facts, db)
    if down:
        out.append(
            make("postgresql_down", "PostgreSQL on this host is not running: " + "; ".join(down))
        )
    schema = facts.get("schema") or {}
    error = one_line(schema.get("msg", ""), 400)
    if schema.get("schema_ok") is None and error and not down:
        login = _login_finding(facts, db, error, logs, target)
        if login:
            out.append(login)
    if schema.get("schema_ok") is False:
        out += _schema_findings(schema)
    return out


def _server_down(facts: Mapping[str, Any], db: Mapping[str, Any]) -> list[str]:
    down: list[str] = []
    if db.get("local") and facts.get("pg_clusters") is not None:
        service = (facts.get("pg_service") or "").strip()
        if service != "active":
            down.append(f"systemctl is-active postgresql: {service or 'unknown'}")
        for line in (facts.get("pg_clusters") or "").splitlines():
            fields = line.split()
            if len(fields) >= 4 and not fields[3].startswith("online"):
                down.append(f"cluster {fields[0]}/{fields[1]} (port {fields[2]}) is {fields[3]}")
    return down


def _login_finding(
    facts: Mapping[str, Any],
    db: Mapping[str, Any],
    error: str,
    logs: Mapping[str, str],
    target: str,
) -> dict[str, str] | None:
    """The host's own login with the app's credentials, refused or failed."""
    refused = refusal_finding_id(error) or (
        "wrong_db_password" if "wrong_db_password" in logs else ""
    )
    if refused:
        refused = refine(refused, facts.get("db_evidence") or {}, facts)
        return make(
            refused,
            f"PostgreSQL refuses the app's login as {db.get('user', '?')} to "
            f"{db.get('db', '?')} at {target}: {error[:200]}",
        )
    if re.search(r"refused|timeout|timed out|could not translate|no route", error, re.I):
        return make(
            "database_unreachable",
            f"this host cannot connect to PostgreSQL at {db.get('host', '?')}:"
            f"{db.get('port', '?')} ({error[:160]})",
        )
    if "psycopg2" in error:
        return None
    return make("database_connect_failed", f"cannot connect to the app's database: {error[:200]}")


def _schema_findings(schema: Mapping[str, Any]) -> list[dict[str, str]]:
    out = []
    if schema.get("missing_tables"):
        out.append(
            make("schema_tables_missing", "tables missing: " + ", ".join(schema["missing_tables"]))
        )
    columns = list(schema.get("missing_columns") or []) + [
        str(item.get("column", item)) if isinstance(item, Mapping) else str(item)
        for item in schema.get("mismatched_columns") or []
    ]
    if columns:
        out.append(
            make(
                "schema_columns_missing",
                "columns missing or of the wrong type: " + ", ".join(columns),
            )
        )
    if schema.get("missing_unique"):
        out.append(
            make(
                "user_identifier_unique_missing",
                "unique indexes missing: " + ", ".join(schema["missing_unique"]),
            )
        )
    if schema.get("missing_step_types"):
        out.append(
            make(
                "schema_step_types_missing",
                "StepType labels missing: " + ", ".join(schema["missing_step_types"]),
            )
        )
    return out
