"""The app-side database probe against a real PostgreSQL: run as it runs in
the app's container (python -, the file on stdin, DATABASE_URL in the
environment), on a healthy schema and with faults PostgreSQL really raises."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from urllib.parse import quote

import pytest
from conftest import ROOT, Database, PostgresServer, apply_schema

PROBE = ROOT / "plugins" / "module_utils" / "app_db_probe.py"


def run_probe(url: str, timeout: float = 5) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    if url:
        env["DATABASE_URL"] = url
    done = subprocess.run(
        [sys.executable, "-", json.dumps({"timeout": timeout})],
        input=PROBE.read_text(),
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    return json.loads(done.stdout)


@pytest.fixture
def schema_db(database: Database) -> Database:
    apply_schema(database)
    return database


def test_a_healthy_database_connects_reads_and_writes_and_keeps_nothing(schema_db):
    result = run_probe(schema_db.dsn)
    assert result["connect"] == {"ok": True}
    assert all(t["ok"] for t in result["tables"].values()), result["tables"]
    assert result["write"] == {"ok": True}
    assert result["session"]["user"] == schema_db.user
    assert result["session"]["default_transaction_read_only"] == "off"
    # Rolled back: the probe left no row behind.
    assert schema_db.query('SELECT count(*) FROM "User"') == [(0,)]
    assert schema_db.query('SELECT count(*) FROM "Step"') == [(0,)]


def test_without_database_url_there_is_nothing_to_probe():
    result = run_probe("")
    assert result["database_url_set"] is False
    assert "connect" not in result


def test_a_wrong_password_is_28p01(schema_db):
    url = schema_db.dsn.replace(quote(schema_db.password, safe=""), "wrong")
    failure = run_probe(url)["connect"]["error"]
    assert failure["sqlstate"] == "28P01"
    assert failure["class"] == "InvalidPasswordError"


def test_tables_that_are_missing_are_42p01(database):
    result = run_probe(database.dsn)
    assert result["tables"]["User"]["error"]["sqlstate"] == "42P01"
    assert result["write"]["stage"] == "User"


def test_a_revoked_insert_fails_the_write_and_not_the_reads(schema_db, postgres: PostgresServer):
    postgres.admin_db(schema_db.name, f'REVOKE INSERT ON "Step" FROM "{schema_db.user}"')
    result = run_probe(schema_db.dsn)
    assert all(t["ok"] for t in result["tables"].values())
    assert result["write"]["stage"] == "Step (user_message)"
    assert result["write"]["error"]["sqlstate"] == "42501"


def test_read_only_sessions_are_25006(schema_db, postgres: PostgresServer):
    postgres.admin(
        f'ALTER ROLE "{schema_db.user}" IN DATABASE "{schema_db.name}" '
        "SET default_transaction_read_only = on"
    )
    try:
        result = run_probe(schema_db.dsn)
    finally:
        postgres.admin(f'ALTER ROLE "{schema_db.user}" IN DATABASE "{schema_db.name}" RESET ALL')
    assert result["session"]["default_transaction_read_only"] == "on"
    assert result["write"]["error"]["sqlstate"] == "25006"


def test_a_missing_unique_index_on_the_identifier_is_42p10(schema_db, postgres):
    postgres.admin_db(schema_db.name, 'DROP INDEX "User_identifier_key"')
    result = run_probe(schema_db.dsn)
    assert result["write"]["stage"] == "User"
    assert result["write"]["error"]["sqlstate"] == "42P10"


def test_a_missing_step_type_label_names_the_kind_of_step(schema_db, postgres):
    postgres.admin_db(
        schema_db.name, """ALTER TYPE "StepType" RENAME VALUE 'assistant_message' TO 'x'"""
    )
    result = run_probe(schema_db.dsn)
    assert result["write"]["stage"] == "Step (assistant_message)"
    assert result["write"]["error"]["sqlstate"] == "22P02"


def test_an_unencoded_password_never_shows_in_the_result(schema_db, postgres):
    password = "Ab1@cd2/ef3#gh"
    postgres.admin(f"ALTER ROLE \"{schema_db.user}\" PASSWORD '{password}'")
    try:
        url = (
            f"postgresql://{schema_db.user}:{password}@{schema_db.host}:{schema_db.port}/"
            f"{schema_db.name}"
        )
        result = run_probe(url, timeout=3)
    finally:
        postgres.admin(f"ALTER ROLE \"{schema_db.user}\" PASSWORD '{schema_db.password}'")
    assert result["connect"]["ok"] is False
    text = json.dumps(result)
    for piece in ("Ab1", "cd2", "ef3", "gh", password):
        assert piece not in text, (piece, text)


def test_a_refused_connection_is_reported_not_raised():
    result = run_probe("postgresql://u:p@127.0.0.1:1/db", timeout=3)
    assert result["connect"]["ok"] is False
    assert result["connect"]["error"]["class"] in {"ConnectionRefusedError", "OSError"}
