#!/usr/bin/python
"""Ansible module: apply and check the PostgreSQL schema of Chainlit's data layer."""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

try:
    import psycopg2

    PSYCOPG2_IMPORT_ERROR: ImportError | None = None
except ImportError as exc:
    PSYCOPG2_IMPORT_ERROR = exc

DOCUMENTATION = r"""
---
module: chainlit_schema
short_description: Apply and check the PostgreSQL schema of Chainlit's official data layer
description:
  - Chainlit's official data layer (used when C(DATABASE_URL) is set) creates no
    tables. This module applies versioned SQL migrations from a directory on the
    managed host, each in its own transaction, and records them in the table
    C(chainlit_schema_migrations).
  - It also compares the live schema with the one Chainlit 2.12 needs (tables,
    columns with their types, and the labels of the C(StepType) enum) and
    reports what is missing.
  - Migration files are named C(NNNN_description.sql) and applied in numeric
    order. A session advisory lock serializes concurrent runs on one database.
version_added: "0.1.0"
author: chainlit-deploy
requirements:
  - psycopg2 (Debian and Ubuntu package C(python3-psycopg2))
attributes:
  check_mode:
    support: full
    description: Reports the pending migrations without applying them.
options:
  state:
    description:
      - C(present) applies the pending migrations of O(migrations_dir), then checks
        the schema and fails when it still lacks something.
      - C(checked) changes nothing; it reports the schema and, when
        O(migrations_dir) is given, the pending migrations.
    type: str
    choices: [present, checked]
    default: present
  migrations_dir:
    description: Directory on the managed host holding the C(NNNN_*.sql) files.
    type: path
  db:
    description: Name of the database.
    type: str
    required: true
    aliases: [login_db]
  login_user:
    description: Role to connect as.
    type: str
    default: postgres
  login_password:
    description: Password of O(login_user).
    type: str
  login_host:
    description:
      - Host to connect to. Without it (and without O(login_unix_socket)) libpq
        uses its default Unix socket.
    type: str
  login_unix_socket:
    description: Directory of the server's Unix socket, e.g. C(/var/run/postgresql).
    type: path
  port:
    description: Port of the server (also selects the socket file).
    type: int
    default: 5432
    aliases: [login_port]
  ssl_mode:
    description: libpq C(sslmode).
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
    default: prefer
  connect_timeout:
    description: Seconds to wait for the connection.
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: Apply the Chainlit schema migrations
  chainlit_schema:
    migrations_dir: /opt/chainlit/schema
    db: chainlit
    login_host: 127.0.0.1
    login_user: chainlit
    login_password: "{{ chainlit_db_password }}"
  no_log: true

- name: Check the schema as the postgres superuser, through the local socket
  chainlit_schema:
    state: checked
    db: chainlit
    login_unix_socket: /var/run/postgresql
  become: true
  become_user: postgres
  register: chainlit_schema_report

- name: Show what is missing
  ansible.builtin.debug:
    var: chainlit_schema_report.missing_columns
  when: not chainlit_schema_report.schema_ok
"""

RETURN = r"""
applied:
  description: Migrations applied by this run (none in check mode).
  returned: always
  type: list
  elements: str
  sample: [0001_chainlit_2_12]
pending:
  description: Migrations not applied yet (after this run; in check mode, the ones it would apply).
  returned: when migrations_dir is given
  type: list
  elements: str
  sample: []
modified:
  description: Applied migrations whose file changed since they were applied (a warning is issued).
  returned: when migrations_dir is given
  type: list
  elements: str
  sample: []
schema_ok:
  description: True when every required table, column (with its type) and StepType label exists.
  returned: always
  type: bool
missing_tables:
  description: Required tables that do not exist.
  returned: always
  type: list
  elements: str
  sample: [Feedback]
missing_columns:
  description: Required columns missing from existing tables, as C(Table.column).
  returned: always
  type: list
  elements: str
  sample: [Element.language]
mismatched_columns:
  description: Columns whose type differs from the required one.
  returned: always
  type: list
  elements: dict
  sample: [{column: Step.input, expected: text, actual: jsonb}]
missing_step_types:
  description: Labels missing from the StepType enum (all of them when the type is absent).
  returned: always
  type: list
  elements: str
  sample: []
"""

MIGRATIONS_TABLE = "chainlit_schema_migrations"
# Arbitrary constant shared by every run: pg_advisory_lock serializes them.
ADVISORY_LOCK_KEY = 0x6368_6C74
MIGRATION_NAME = re.compile(r"^(\d{4,})_[A-Za-z0-9_]+\.sql$")

# What Chainlit 2.12's ChainlitDataLayer reads and writes: table -> column ->
# PostgreSQL type name (pg_type.typname). The single source of truth
# for checks; tests/test_schema_spec.py re-derives it from the pinned package.
REQUIRED_COLUMNS: dict[str, dict[str, str]] = {
    "User": {
        "id": "text",
        "createdAt": "timestamp",
        "updatedAt": "timestamp",
        "metadata": "jsonb",
        "identifier": "text",
    },
    "Thread": {
        "id": "text",
        "createdAt": "timestamp",
        "updatedAt": "timestamp",
        "deletedAt": "timestamp",
        "name": "text",
        "metadata": "jsonb",
        "userId": "text",
        "tags": "_text",
    },
    "Step": {
        "id": "text",
        "createdAt": "timestamp",
        "updatedAt": "timestamp",
        "parentId": "text",
        "threadId": "text",
        "input": "text",
        "metadata": "jsonb",
        "name": "text",
        "output": "text",
        "type": "StepType",
        "showInput": "text",
        "isError": "bool",
        "startTime": "timestamp",
        "endTime": "timestamp",
    },
    "Element": {
        "id": "text",
        "createdAt": "timestamp",
        "updatedAt": "timestamp",
        "threadId": "text",
        "stepId": "text",
        "metadata": "jsonb",
        "mime": "text",
        "name": "text",
        "objectKey": "text",
        "url": "text",
        "chainlitKey": "text",
        "display": "text",
        "size": "text",
        "language": "text",
        "page": "int4",
        "props": "jsonb",
    },
    "Feedback": {
        "id": "text",
        "createdAt": "timestamp",
        "updatedAt": "timestamp",
        "stepId": "text",
        "name": "text",
        "value": "float8",
        "comment": "text",
    },
}

REQUIRED_STEP_TYPES: tuple[str, ...] = (
    "assistant_message",
    "embedding",
    "llm",
    "retrieval",
    "rerank",
    "run",
    "system_message",
    "tool",
    "undefined",
    "user_message",
)


@dataclass(frozen=True)
class Migration:
    version: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()


@dataclass
class SchemaReport:
    missing_tables: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)
    mismatched_columns: list[dict[str, str]] = field(default_factory=list)
    missing_step_types: list[str] = field(default_factory=list)

    @property
    def schema_ok(self) -> bool:
        return not (
            self.missing_tables
            or self.missing_columns
            or self.mismatched_columns
            or self.missing_step_types
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
        ]
        return "; ".join(part for part in parts if part) or "schema complete"


def discover_migrations(directory: str | Path) -> list[Migration]:
    """The NNNN_*.sql files of ``directory`` in numeric order; other *.sql names are errors."""
    found: dict[int, Migration] = {}
    for path in sorted(Path(directory).glob("*.sql")):
        match = MIGRATION_NAME.match(path.name)
        if not match:
            raise ValueError(f"{path.name}: migration files must be named NNNN_description.sql")
        number = int(match.group(1))
        if number in found:
            raise ValueError(f"{path.name}: number {number} used by {found[number].version} too")
        found[number] = Migration(version=path.stem, sql=path.read_text(encoding="utf-8"))
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
) -> SchemaReport:
    """Compare live {table: {column: udt_name}} and enum labels with what is required."""
    report = SchemaReport()
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


def check_schema(conn: Any) -> SchemaReport:
    with conn.cursor() as cursor:
        columns, labels = read_live_schema(cursor)
    conn.rollback()
    return compare_schema(columns, labels)


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
    """Apply each migration in its own transaction and record it; return the versions applied."""
    done: list[str] = []
    for migration in migrations:
        try:
            with conn.cursor() as cursor:
                cursor.execute(
                    f"CREATE TABLE IF NOT EXISTS {MIGRATIONS_TABLE} ("
                    "version text PRIMARY KEY, checksum text NOT NULL, "
                    "applied_at timestamptz NOT NULL DEFAULT now())"
                )
                cursor.execute(migration.sql)
                cursor.execute(
                    f"INSERT INTO {MIGRATIONS_TABLE} (version, checksum) VALUES (%s, %s)",
                    (migration.version, migration.checksum),
                )
            conn.commit()
        except Exception as exc:
            conn.rollback()
            raise MigrationError(migration.version, exc) from exc
        done.append(migration.version)
    return done


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


def connection_kwargs(params: Mapping[str, Any]) -> dict[str, Any]:
    """psycopg2.connect() keyword arguments from the module's parameters."""
    kwargs: dict[str, Any] = {
        "dbname": params["db"],
        "user": params["login_user"],
        "port": params["port"],
        "sslmode": params["ssl_mode"],
        "connect_timeout": params["connect_timeout"],
        "application_name": "ansible-chainlit_schema",
    }
    host = params.get("login_unix_socket") or params.get("login_host")
    if host:
        kwargs["host"] = host
    if params.get("login_password"):
        kwargs["password"] = params["login_password"]
    return kwargs


def main() -> None:
    from ansible.module_utils.basic import AnsibleModule, missing_required_lib

    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "checked"], "default": "present"},
            "migrations_dir": {"type": "path"},
            "db": {"type": "str", "required": True, "aliases": ["login_db"]},
            "login_user": {"type": "str", "default": "postgres"},
            "login_password": {"type": "str", "no_log": True},
            "login_host": {"type": "str"},
            "login_unix_socket": {"type": "path"},
            "port": {"type": "int", "default": 5432, "aliases": ["login_port"]},
            "ssl_mode": {
                "type": "str",
                "default": "prefer",
                "choices": ["disable", "allow", "prefer", "require", "verify-ca", "verify-full"],
            },
            "connect_timeout": {"type": "int", "default": 10},
        },
        required_if=[("state", "present", ("migrations_dir",))],
        mutually_exclusive=[("login_host", "login_unix_socket")],
        supports_check_mode=True,
    )
    if PSYCOPG2_IMPORT_ERROR is not None:
        module.fail_json(msg=missing_required_lib("psycopg2"), exception=str(PSYCOPG2_IMPORT_ERROR))

    params = module.params
    migrations: list[Migration] | None = None
    if params["migrations_dir"]:
        if not Path(params["migrations_dir"]).is_dir():
            module.fail_json(msg=f"migrations_dir {params['migrations_dir']} is not a directory")
        try:
            migrations = discover_migrations(params["migrations_dir"])
        except (OSError, ValueError) as exc:
            module.fail_json(msg=f"cannot read migrations: {exc}")

    try:
        conn = psycopg2.connect(**connection_kwargs(params))
    except psycopg2.Error as exc:
        module.fail_json(msg=f"cannot connect to database {params['db']}: {exc}".strip())

    result: dict[str, Any] = {"changed": False, "applied": []}
    try:
        if migrations is not None:
            check_only = module.check_mode or params["state"] == "checked"
            run = migrate(conn, migrations, check_mode=check_only)
            result.update(asdict(run), changed=bool(run.applied or run.pending))
            if params["state"] == "checked":
                result["changed"] = False
            for version in run.modified:
                module.warn(
                    f"migration {version} changed after it was applied; "
                    "add a new migration instead of editing an applied one"
                )
        report = check_schema(conn)
    except MigrationError as exc:
        module.fail_json(msg=str(exc), **result)
    except psycopg2.Error as exc:
        module.fail_json(msg=f"database error: {exc}".strip(), **result)
    finally:
        conn.close()

    result.update(report.as_dict())
    pending_left = bool(result.get("pending"))
    if params["state"] == "present" and not report.schema_ok and not pending_left:
        module.fail_json(
            msg=f"schema is still incomplete after the migrations: {report.summary()}", **result
        )
    result["msg"] = report.summary()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
