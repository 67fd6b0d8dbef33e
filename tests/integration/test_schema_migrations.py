"""The role's SQL migrations and the schema checker, on a real PostgreSQL."""

from __future__ import annotations

import pytest
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.migrations import (
    MIGRATIONS_TABLE,
    REQUIRED_COLUMNS,
    REQUIRED_STEP_TYPES,
    MigrationError,
    check_schema,
    discover_migrations,
    migrate,
)
from conftest import SCHEMA_DIR, Database, PostgresServer, apply_schema, load_prisma_fixture


def report_of(database: Database):
    conn = database.connect()
    try:
        return check_schema(conn)
    finally:
        conn.close()


def test_empty_database_lacks_everything(database: Database) -> None:
    report = report_of(database)
    assert not report.schema_ok
    assert report.missing_tables == list(REQUIRED_COLUMNS)
    assert report.missing_step_types == list(REQUIRED_STEP_TYPES)


def test_migrations_build_the_whole_schema_and_are_recorded(database: Database) -> None:
    versions = [m.version for m in discover_migrations(SCHEMA_DIR)]
    assert versions[:2] == ["0001_chainlit_2_0_base", "0002_chainlit_2_6_thread_metadata_default"]

    assert apply_schema(database) == versions

    report = report_of(database)
    assert report.schema_ok, report.summary()
    recorded = database.query(f"SELECT version FROM {MIGRATIONS_TABLE} ORDER BY version")
    assert [row[0] for row in recorded] == versions


def test_second_run_applies_nothing_and_changes_nothing(
    postgres: PostgresServer, database: Database
) -> None:
    apply_schema(database)
    before = postgres.pg_dump_schema(database)

    assert apply_schema(database) == []

    assert postgres.pg_dump_schema(database) == before


def test_each_migration_is_idempotent_on_its_own(
    postgres: PostgresServer, database: Database
) -> None:
    """Even without the record (lost or never made), running a migration again is harmless."""
    apply_schema(database)
    before = postgres.pg_dump_schema(database)
    database.query(f"DELETE FROM {MIGRATIONS_TABLE}")

    assert apply_schema(database) != []

    assert postgres.pg_dump_schema(database) == before


def test_check_mode_reports_pending_without_applying(database: Database) -> None:
    conn = database.connect()
    try:
        run = migrate(conn, discover_migrations(SCHEMA_DIR), check_mode=True)
    finally:
        conn.close()
    assert run.pending == [m.version for m in discover_migrations(SCHEMA_DIR)]
    assert run.applied == []
    assert database.query("SELECT to_regclass(%s)", (MIGRATIONS_TABLE,)) == [(None,)]
    assert report_of(database).missing_tables == list(REQUIRED_COLUMNS)


def test_migrations_complete_a_schema_made_by_upstream_prisma(
    postgres: PostgresServer, database: Database
) -> None:
    load_prisma_fixture(database)
    prisma_dump = postgres.pg_dump_schema(database)
    # Upstream's schema already has every column 2.12 uses.
    assert report_of(database).schema_ok

    assert apply_schema(database) == [m.version for m in discover_migrations(SCHEMA_DIR)]

    assert report_of(database).schema_ok
    after = postgres.pg_dump_schema(database)
    # Only our additions: the record table, one index and the default of
    # "Thread".metadata (0002); upstream's objects stay.
    assert "_prisma_migrations" in after
    added = set(after.splitlines()) - set(prisma_dump.splitlines())
    assert any(MIGRATIONS_TABLE in line for line in added)
    assert any("Thread_userId_updatedAt_idx" in line for line in added)
    removed = set(prisma_dump.splitlines()) - set(after.splitlines())
    assert all("metadata jsonb NOT NULL" in line for line in removed), removed
    assert any("metadata jsonb DEFAULT '{}'::jsonb NOT NULL" in line for line in added), added


def test_migrations_add_columns_missing_from_an_older_schema(database: Database) -> None:
    """A database made by upstream's first migration only (no "tags") gets the column."""
    load_prisma_fixture(database)
    database.query('ALTER TABLE "Thread" DROP COLUMN "tags"')
    database.query('ALTER TABLE "Element" DROP COLUMN "language"')
    assert report_of(database).missing_columns == ["Thread.tags", "Element.language"]

    apply_schema(database)

    assert report_of(database).schema_ok


def test_checker_reports_a_dropped_column(database: Database) -> None:
    apply_schema(database)
    database.query('ALTER TABLE "Element" DROP COLUMN "language"')

    report = report_of(database)

    assert not report.schema_ok
    assert report.missing_columns == ["Element.language"]
    assert report.missing_tables == []
    assert "Element.language" in report.summary()


def test_checker_reports_a_dropped_table(database: Database) -> None:
    apply_schema(database)
    database.query('DROP TABLE "Feedback"')

    report = report_of(database)

    assert report.missing_tables == ["Feedback"]
    assert report.missing_columns == []


def test_checker_reports_a_wrong_type_and_a_missing_label(database: Database) -> None:
    apply_schema(database)
    database.query('ALTER TABLE "Step" ALTER COLUMN "input" TYPE jsonb USING to_jsonb("input")')
    database.query('ALTER TABLE "Step" ALTER COLUMN "type" TYPE text')
    database.query('DROP TYPE "StepType"')
    database.query("CREATE TYPE \"StepType\" AS ENUM ('run', 'user_message')")

    report = report_of(database)

    assert {"column": "Step.input", "expected": "text", "actual": "jsonb"} in (
        report.mismatched_columns
    )
    assert "assistant_message" in report.missing_step_types
    assert "user_message" not in report.missing_step_types


def test_a_failing_migration_rolls_back_the_whole_run(tmp_path, database: Database) -> None:
    # All pending migrations go in one transaction: a database is never left
    # between two releases' schemas.
    (tmp_path / "0001_ok.sql").write_text("CREATE TABLE kept (id int);", encoding="utf-8")
    (tmp_path / "0002_broken.sql").write_text(
        "CREATE TABLE half_done (id int); SELECT no_such_function();", encoding="utf-8"
    )
    conn = database.connect()
    try:
        with pytest.raises(MigrationError, match="0002_broken"):
            migrate(conn, discover_migrations(tmp_path))
    finally:
        conn.close()
    assert database.query("SELECT to_regclass(%s)", (MIGRATIONS_TABLE,)) == [(None,)]
    assert database.query("SELECT to_regclass('half_done')") == [(None,)]
    assert database.query("SELECT to_regclass('kept')") == [(None,)]


def test_an_edited_applied_migration_is_reported(tmp_path, database: Database) -> None:
    migration = tmp_path / "0001_first.sql"
    migration.write_text("CREATE TABLE IF NOT EXISTS t (id int);", encoding="utf-8")
    conn = database.connect()
    try:
        migrate(conn, discover_migrations(tmp_path))
        migration.write_text("CREATE TABLE IF NOT EXISTS t (id bigint);", encoding="utf-8")
        run = migrate(conn, discover_migrations(tmp_path))
    finally:
        conn.close()
    assert run.applied == []
    assert run.modified == ["0001_first"]


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["1_short.sql"], "NNNN_description"),
        (["0001_a.sql", "0001_b.sql"], "used by"),
        (["0001 spaces.sql"], "NNNN_description"),
    ],
)
def test_badly_named_migrations_are_refused(tmp_path, names: list[str], message: str) -> None:
    for name in names:
        (tmp_path / name).write_text("SELECT 1;", encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        discover_migrations(tmp_path)


def test_migrations_are_ordered_by_number(tmp_path) -> None:
    for name in ("0010_late.sql", "0002_early.sql", "README.md"):
        (tmp_path / name).write_text("SELECT 1;", encoding="utf-8")
    assert [m.version for m in discover_migrations(tmp_path)] == ["0002_early", "0010_late"]
