"""The chainlit_schema module as Ansible runs it (AnsiballZ, check mode, no_log)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import COLLECTIONS_DIR, SCHEMA_DIR, Database, PostgresServer, apply_schema

ALL_MIGRATIONS = sorted(p.stem for p in SCHEMA_DIR.glob("*.sql"))


def run_module(
    tmp_path: Path, args: dict[str, Any], *, check: bool = False
) -> tuple[dict[str, Any], str]:
    """Run chainlit_schema on localhost with ansible; return its result and the raw output."""
    config = tmp_path / "ansible.cfg"
    config.write_text("[defaults]\nlocalhost_warning = false\n", encoding="utf-8")
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")},
        "ANSIBLE_CONFIG": str(config),
        "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS_DIR),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
        "ANSIBLE_LOCAL_TEMP": str(tmp_path / "tmp"),
        "ANSIBLE_REMOTE_TEMP": str(tmp_path / "remote-tmp"),
    }
    command = [
        str(Path(sys.executable).with_name("ansible")),
        "localhost",
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        "-m",
        "chainlit_deploy.stack.chainlit_schema",
        "-a",
        json.dumps(args),
    ]
    if check:
        command.append("--check")
    proc = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path)
    output = proc.stdout + proc.stderr
    try:
        result = json.loads(proc.stdout)["plays"][0]["tasks"][0]["hosts"]["localhost"]
    except (ValueError, KeyError, IndexError):
        pytest.fail(f"no module result from ansible:\n{output}")
    return result, output


def present(database: Database) -> dict[str, Any]:
    return {**database.module_params, "migrations_dir": str(SCHEMA_DIR)}


def test_present_applies_once_then_reports_no_change(tmp_path, database: Database) -> None:
    first, _ = run_module(tmp_path, present(database))
    assert not first.get("failed"), first
    assert first["changed"] is True
    assert first["applied"] == ALL_MIGRATIONS
    assert first["schema_ok"] is True

    second, _ = run_module(tmp_path, present(database))
    assert second["changed"] is False
    assert second["applied"] == []
    assert second["pending"] == []
    assert second["schema_ok"] is True


def test_migrations_given_inline_apply_like_the_directory_and_are_recorded_alike(
    tmp_path, database: Database
) -> None:
    """The role passes the migrations as the controller read them (no copy on
    the host): same result, and the directory finds nothing left to do."""
    inline = {path.name: path.read_text() for path in SCHEMA_DIR.glob("*.sql")}
    params = {**database.module_params, "migrations": inline}
    first, _ = run_module(tmp_path, params)
    assert not first.get("failed"), first
    assert first["applied"] == ALL_MIGRATIONS
    assert first["schema_ok"] is True
    again, _ = run_module(tmp_path, present(database))
    assert again["changed"] is False and again["pending"] == []
    both, _ = run_module(tmp_path, {**present(database), "migrations": inline})
    assert both.get("failed") and "mutually exclusive" in both["msg"]


def test_check_mode_reports_pending_and_changes_nothing(tmp_path, database: Database) -> None:
    result, _ = run_module(tmp_path, present(database), check=True)

    assert not result.get("failed"), result
    assert result["changed"] is True
    assert result["pending"] == ALL_MIGRATIONS
    assert result["applied"] == []
    assert database.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_check_mode_after_apply_reports_no_change(tmp_path, database: Database) -> None:
    apply_schema(database)
    result, _ = run_module(tmp_path, present(database), check=True)
    assert result["changed"] is False
    assert result["pending"] == []


def test_checked_reports_missing_column_without_changing(tmp_path, database: Database) -> None:
    apply_schema(database)
    database.query('ALTER TABLE "Element" DROP COLUMN "language"')
    database.query('DROP TABLE "Feedback"')

    result, _ = run_module(tmp_path, {**database.module_params, "state": "checked"})

    assert not result.get("failed"), result
    assert result["changed"] is False
    assert result["schema_ok"] is False
    assert result["missing_columns"] == ["Element.language"]
    assert result["missing_tables"] == ["Feedback"]
    assert "Element.language" in result["msg"]


def test_present_repairs_a_schema_after_its_record_is_lost(tmp_path, database: Database) -> None:
    apply_schema(database)
    database.query('ALTER TABLE "Element" DROP COLUMN "language"')
    database.query("DROP TABLE chainlit_schema_migrations")

    result, _ = run_module(tmp_path, present(database))

    assert result["changed"] is True
    assert result["schema_ok"] is True


@pytest.mark.parametrize(
    "drop",
    [
        'DROP TABLE "Feedback"',
        'ALTER TABLE "Element" DROP COLUMN "language"',
        'DROP INDEX "User_identifier_key"',
    ],
)
def test_present_repairs_what_was_dropped_after_the_migrations_were_recorded(
    tmp_path, database: Database, drop: str
) -> None:
    apply_schema(database)
    database.query(drop)

    checked, _ = run_module(tmp_path, {**present(database), "state": "checked"})
    assert checked["schema_ok"] is False
    preview, _ = run_module(tmp_path, present(database), check=True)
    assert preview["changed"] is True and "repaired" in preview
    result, _ = run_module(tmp_path, present(database))

    assert result["changed"] is True
    assert result["repaired"]
    assert result["schema_ok"] is True
    again, _ = run_module(tmp_path, present(database))
    assert again["changed"] is False


def test_a_missing_unique_index_on_the_users_identifier_is_reported(
    tmp_path, database: Database
) -> None:
    apply_schema(database)
    database.query('DROP INDEX "User_identifier_key"')
    result, _ = run_module(tmp_path, {**present(database), "state": "checked"})
    assert result["missing_unique"] == ["User(identifier)"]


def test_present_fails_when_migrations_cannot_complete_the_schema(
    tmp_path, database: Database
) -> None:
    apply_schema(database)
    database.query('ALTER TABLE "Step" ALTER COLUMN "input" TYPE jsonb USING to_jsonb("input")')

    result, _ = run_module(tmp_path, present(database))

    assert result["failed"] is True
    assert "Step.input is jsonb, needs text" in result["msg"]


def test_connects_through_the_unix_socket(
    tmp_path, postgres: PostgresServer, database: Database
) -> None:
    params = {**database.module_params, "login_unix_socket": str(postgres.socket_dir)}
    del params["login_host"]
    result, _ = run_module(tmp_path, {**params, "state": "checked"})
    assert not result.get("failed"), result
    assert result["schema_ok"] is False


def test_wrong_password_fails_without_showing_the_password(tmp_path, database: Database) -> None:
    args = {**present(database), "login_password": "not-the-password-xyz"}

    result, output = run_module(tmp_path, args)

    assert result["failed"] is True
    assert "password authentication failed" in result["msg"]
    assert "not-the-password-xyz" not in output
    assert database.password not in output


def test_an_older_release_gets_only_the_migrations_of_its_line_then_upgrades(
    tmp_path, database: Database
) -> None:
    old, _ = run_module(tmp_path, {**present(database), "chainlit_version": "2.5.5"})
    assert not old.get("failed"), old
    assert old["applied"] == ["0001_chainlit_2_0_base"]
    assert old["pending"] == []
    assert old["schema_ok"] is True

    new, _ = run_module(tmp_path, {**present(database), "chainlit_version": "2.12.0"})
    assert new["applied"] == ["0002_chainlit_2_6_thread_metadata_default"]
    default = database.query(
        "SELECT column_default FROM information_schema.columns "
        "WHERE table_name = 'Thread' AND column_name = 'metadata'"
    )
    assert default == [("'{}'::jsonb",)]


def test_the_columns_checked_follow_the_release(tmp_path, database: Database) -> None:
    apply_schema(database)
    database.query('ALTER TABLE "Step" DROP COLUMN "createdAt"')

    older, _ = run_module(
        tmp_path, {**database.module_params, "state": "checked", "chainlit_version": "2.9.4"}
    )
    newer, _ = run_module(
        tmp_path, {**database.module_params, "state": "checked", "chainlit_version": "2.9.5"}
    )

    assert older["schema_ok"] is True, older
    assert newer["schema_ok"] is False
    assert newer["missing_columns"] == ["Step.createdAt"]


def test_a_release_outside_the_range_is_refused_before_any_change(
    tmp_path, database: Database
) -> None:
    result, _ = run_module(tmp_path, {**present(database), "chainlit_version": "1.3.2"})

    assert result["failed"] is True
    assert "outside the supported range" in result["msg"]
    assert database.query("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == [(0,)]


def test_a_downgrade_below_what_the_database_was_migrated_for_is_refused(
    tmp_path, database: Database
) -> None:
    # A migration that only 2.9.5 and later can live with, as a future line
    # would bring one.
    migrations = tmp_path / "schema"
    migrations.mkdir()
    for sql in SCHEMA_DIR.glob("*.sql"):
        (migrations / sql.name).write_text(sql.read_text())
    (migrations / "0099_chainlit_2_9_future.sql").write_text(
        "-- readable by chainlit >= 2.9.5\nCOMMENT ON TABLE \"Step\" IS 'future';\n"
    )
    args = {**database.module_params, "migrations_dir": str(migrations)}
    upgraded, _ = run_module(tmp_path, {**args, "chainlit_version": "2.12.0"})
    assert "0099_chainlit_2_9_future" in upgraded["applied"]
    before = database.query("SELECT version FROM chainlit_schema_migrations ORDER BY 1")

    result, _ = run_module(tmp_path, {**args, "chainlit_version": "2.8.5"})

    assert result["failed"] is True
    assert "chainlit 2.8.5 cannot read it" in result["msg"]
    assert "restore" in result["msg"]
    assert database.query("SELECT version FROM chainlit_schema_migrations ORDER BY 1") == before
