"""Versioned SQL migrations of the Chainlit schema and the comparison of a live
schema with what the data layer needs (psycopg2 connections)."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.chainlit_schema_spec import (
    REQUIRED_COLUMNS,
    REQUIRED_STEP_TYPES,
    REQUIRED_UNIQUE,
    required_columns,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.chainlit_versions import (
    parse as parse_version,
)

MIGRATIONS_TABLE = "chainlit_schema_migrations"
# Arbitrary constant shared by every run: pg_advisory_lock serializes them.
ADVISORY_LOCK_KEY = 0x6368_6C74
MIGRATION_NAME = re.compile(r"^(\d{4,})_[A-Za-z0-9_]+\.sql$")
RELEASE_IN_NAME = re.compile(r"^\d{4,}_chainlit_(\d+)_(\d+)(?:_|$)")
READABLE_BY = re.compile(r"^--\s*readable by chainlit\s*>=\s*([0-9][0-9.]*)\s*$", re.I | re.M)


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()

    @property
    def release(self) -> str:
        """The Chainlit line it was derived from (NNNN_chainlit_X_Y_*.sql), "" if none."""
        match = RELEASE_IN_NAME.match(self.version)
        return f"{match.group(1)}.{match.group(2)}" if match else ""

    @property
    def readable_by(self) -> str:
        """The oldest Chainlit release that can still use the data once it is
        applied ("-- readable by chainlit >= X" in the file), "" for any."""
        match = READABLE_BY.search(self.sql)
        return match.group(1) if match else ""


@dataclass
class SchemaReport:
    missing_tables: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    mismatched_columns: list[dict[str, str]] = field(default_factory=list)
    missing_step_types: list[str] = field(default_factory=list)
    missing_unique: list[str] = field(default_factory=list)

    @property
    def schema_ok(self) -> bool:
        return not (
            self.missing_tables
            or self.missing_columns
            or self.mismatched_columns
            or self.missing_step_types
            or self.missing_unique
        )

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "schema_ok": self.schema_ok}

    def summary(self) -> str:
        parts = [
            f"missing tables: {', '.join(self.missing_tables)}" if self.missing_tables else "",
            f"missing columns: {', '.join(self.missing_columns)}" if self.missing_columns else "",
            "wrong types: "
            + ", ".join(
                f"{m['column']} is {m['actual']}, needs {m['expected']}"
                for m in self.mismatched_columns
            )
            if self.mismatched_columns
            else "",
            f"missing StepType labels: {', '.join(self.missing_step_types)}"
            if self.missing_step_types
            else "",
            f"missing unique indexes: {', '.join(self.missing_unique)}"
            if self.missing_unique
            else "",
        ]
        return "; ".join(part for part in parts if part) or "schema complete"


def discover_migrations(directory: str | Path) -> list[Migration]:
    """The NNNN_*.sql files of ``directory`` in numeric order; other *.sql names are errors."""
    return migrations_from(
        {path.name: path.read_text(encoding="utf-8") for path in Path(directory).glob("*.sql")}
    )


def migrations_from(files: Mapping[str, str]) -> list[Migration]:
    """Migrations from file names (NNNN_description.sql) and their SQL, in numeric order."""
    found: dict[int, Migration] = {}
    for name in sorted(files):
        match = MIGRATION_NAME.match(name)
        if not match:
            raise ValueError(f"{name}: migration files must be named NNNN_description.sql")
        number = int(match.group(1))
        if number in found:
            raise ValueError(f"{name}: number {number} used by {found[number].version} too")
        found[number] = Migration(version=name.removesuffix(".sql"), sql=files[name])
    return [found[number] for number in sorted(found)]


def pending_migrations(
    migrations: Iterable[Migration], applied: Mapping[str, str]
) -> list[Migration]:
    return [migration for migration in migrations if migration.version not in applied]


def modified_migrations(migrations: Iterable[Migration], applied: Mapping[str, str]) -> list[str]:
    return [
        migration.version
        for migration in migrations
        if migration.version in applied and applied[migration.version] != migration.checksum
    ]


def compare_schema(
    live_columns: Mapping[str, Mapping[str, str]],
    step_types: Iterable[str],
    required: Mapping[str, Mapping[str, str]] = REQUIRED_COLUMNS,
    required_step_types: Iterable[str] = REQUIRED_STEP_TYPES,
    live_unique: Mapping[str, Iterable[tuple[str, ...]]] | None = None,
    required_unique: Mapping[str, Iterable[tuple[str, ...]]] = REQUIRED_UNIQUE,
) -> SchemaReport:
    """Compare live {table: {column: udt_name}}, enum labels and unique
    indexes ({table: [(column, ...), ...]}; None skips them) with what is required."""
    report = SchemaReport()
    if live_unique is not None:
        report.missing_unique = [
            f"{table}({', '.join(columns)})"
            for table, sets in required_unique.items()
            if table in live_columns
            for columns in sets
            if tuple(columns) not in {tuple(c) for c in live_unique.get(table, ())}
        ]
    for table, columns in required.items():
        live = live_columns.get(table)
        if live is None:
            report.missing_tables.append(table)
            continue
        for column, expected in columns.items():
            actual = live.get(column)
            if actual is None:
                report.missing_columns.append(f"{table}.{column}")
            elif actual != expected:
                report.mismatched_columns.append(
                    {"column": f"{table}.{column}", "expected": expected, "actual": actual}
                )
    labels = set(step_types)
    report.missing_step_types = [label for label in required_step_types if label not in labels]
    return report


def read_live_schema(cursor: Any) -> tuple[dict[str, dict[str, str]], list[str]]:
    """Columns of the current schema's tables and the labels of the visible StepType enum."""
    # pg_catalog rather than information_schema, which hides tables the
    # connected role has no privilege on.
    cursor.execute(
        "SELECT c.relname, a.attname, t.typname FROM pg_attribute a "
        "JOIN pg_class c ON c.oid = a.attrelid JOIN pg_type t ON t.oid = a.atttypid "
        "WHERE c.relnamespace = (SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
        "AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped"
    )
    columns: dict[str, dict[str, str]] = {}
    for table, column, udt in cursor.fetchall():
        columns.setdefault(table, {})[column] = udt
    cursor.execute(
        "SELECT e.enumlabel FROM pg_enum e JOIN pg_type t ON t.oid = e.enumtypid "
        "WHERE t.typname = 'StepType' AND pg_type_is_visible(t.oid) ORDER BY e.enumsortorder"
    )
    return columns, [row[0] for row in cursor.fetchall()]


def read_unique_indexes(cursor: Any) -> dict[str, list[tuple[str, ...]]]:
    """{table: [(column, ...), ...]} of the unique indexes of the current schema's tables."""
    cursor.execute(
        "SELECT c.relname, array_agg(a.attname ORDER BY k.ord) FROM pg_index i "
        "JOIN pg_class c ON c.oid = i.indrelid "
        "CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
        "JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum "
        "WHERE i.indisunique AND c.relnamespace = "
        "(SELECT oid FROM pg_namespace WHERE nspname = current_schema()) "
        "GROUP BY c.relname, i.indexrelid"
    )
    found: dict[str, list[tuple[str, ...]]] = {}
    for table, columns in cursor.fetchall():
        found.setdefault(table, []).append(tuple(columns))
    return found


def check_schema(conn: Any, version: str = "") -> SchemaReport:
    """The live schema against what release ``version`` needs (every supported
    release's needs without a version)."""
    with conn.cursor() as cursor:
        columns, labels = read_live_schema(cursor)
        unique = read_unique_indexes(cursor)
    conn.rollback()
    return compare_schema(columns, labels, required_columns(version), live_unique=unique)


def repair(conn: Any, migrations: Iterable[Migration]) -> None:
    """Apply every migration again, in one transaction, without recording it:
    each statement is idempotent, so what was dropped since (a table, a column,
    an index) comes back and the rest is left as it is."""
    with conn.cursor() as cursor:
        for migration in migrations:
            cursor.execute(migration.sql)
    conn.commit()


def read_applied(conn: Any) -> dict[str, str]:
    """{version: checksum} of the recorded migrations; empty when the table does not exist."""
    with conn.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", (MIGRATIONS_TABLE,))
        (exists,) = cursor.fetchone()
        applied: dict[str, str] = {}
        if exists:
            cursor.execute(f"SELECT version, checksum FROM {MIGRATIONS_TABLE}")
            applied = dict(cursor.fetchall())
    conn.rollback()
    return applied


def apply_migrations(conn: Any, migrations: Iterable[Migration]) -> list[str]:
    """Apply every pending migration and record it, all in one transaction:
    the schema moves forward whole or not at all. Return the versions applied."""
    done: list[str] = []
    current = ""
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
                "version text PRIMARY KEY, checksum text NOT NULL, "
                "applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for migration in migrations:
                current = migration.version
                cursor.execute(migration.sql)
                cursor.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (version, checksum) VALUES (%s, %s)",
                    (migration.version, migration.checksum),
                )
                done.append(migration.version)
        conn.commit()
    except Exception as exc:
        conn.rollback()
        raise MigrationError(current or "setup", exc) from exc
    return done


def for_release(migrations: Iterable[Migration], version: str) -> list[Migration]:
    """The migrations a Chainlit release needs: those derived from its line or an
    older one (all of them without a version)."""
    if not version:
        return list(migrations)
    target = parse_version(version)[:2]
    return [m for m in migrations if not m.release or parse_version(m.release) <= target]


def downgrade_problem(
    applied: Mapping[str, str], migrations: Iterable[Migration], version: str
) -> str:
    """Why the database, as migrated, no longer fits release ``version`` ("" if it does)."""
    if not version:
        return ""
    blocking = [
        m
        for m in migrations
        if m.version in applied
        and m.readable_by
        and parse_version(version) < parse_version(m.readable_by)
    ]
    if not blocking:
        return ""
    newest = max(blocking, key=lambda m: parse_version(m.readable_by))
    return (
        f"the database was migrated for Chainlit {newest.readable_by} or later "
        f"({', '.join(m.version for m in blocking)}), and chainlit {version} cannot read it: "
        "keep a release of at least that one, or restore the backup taken before the upgrade "
        "(chainlit_deploy.stack.restore) and deploy the older release then"
    )


class MigrationError(RuntimeError):
    def __init__(self, version: str, cause: Exception) -> None:
        super().__init__(f"migration {version} failed and was rolled back: {cause}".strip())
        self.version = version


@dataclass
class MigrationRun:
    applied: list[str]
    pending: list[str]
    modified: list[str]


def migrate(conn: Any, migrations: list[Migration], check_mode: bool = False) -> MigrationRun:
    """Apply what is pending (or, in check mode, only report it) under an advisory lock."""
    if check_mode:
        applied = read_applied(conn)
        pending = pending_migrations(migrations, applied)
        return MigrationRun(
            applied=[],
            pending=[m.version for m in pending],
            modified=modified_migrations(migrations, applied),
        )
    with conn.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s)", (ADVISORY_LOCK_KEY,))
    conn.commit()
    try:
        applied = read_applied(conn)
        done = apply_migrations(conn, pending_migrations(migrations, applied))
        return MigrationRun(
            applied=done, pending=[], modified=modified_migrations(migrations, applied)
        )
    finally:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,))
        conn.commit()
