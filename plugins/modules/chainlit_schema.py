#!/usr/bin/python
"""Ansible module: apply and check the PostgreSQL schema of Chainlit's data layer."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.chainlit_deploy.stack.plugins.module_utils import (
    chainlit_versions,
    postgres_login,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.migrations import (
    Migration,
    MigrationError,
    check_schema,
    discover_migrations,
    downgrade_problem,
    for_release,
    migrate,
    migrations_from,
    read_applied,
    repair,
)

DOCUMENTATION = r"""
---
module: chainlit_schema
short_description: Apply and check the PostgreSQL schema of Chainlit's official data layer
description:
  - Chainlit's official data layer (used when C(DATABASE_URL) is set) creates no
    tables. This module applies versioned SQL migrations from a directory on the
    managed host, each in its own transaction, and records them in the table
    C(chainlit_schema_migrations).
  - It also compares the live schema with the one Chainlit needs (tables,
    columns with their types, and the labels of the C(StepType) enum) and
    reports what is missing.
  - When every migration is recorded as applied and yet something they create is
    gone (a dropped table, column or unique index), O(state=present) applies them all
    again in one transaction (each statement is idempotent) and reports RV(repaired).
  - Migration files are named C(NNNN_description.sql) and applied in numeric
    order. A session advisory lock serializes concurrent runs on one database.
version_added: "0.1.0"
author: chainlit-deploy
extends_documentation_fragment:
  - chainlit_deploy.stack.postgres_login
attributes:
  check_mode:
    support: full
    description: Reports the pending migrations without applying them.
options:
  state:
    description:
      - C(present) applies the pending migrations of O(migrations) or
        O(migrations_dir), then checks the schema and fails when it still lacks
        something.
      - C(checked) changes nothing; it reports the schema and, when
        O(migrations) or O(migrations_dir) is given, the pending migrations.
    type: str
    choices: [present, checked]
    default: present
  migrations_dir:
    description: Directory on the managed host holding the C(NNNN_*.sql) files.
    type: path
  migrations:
    description:
      - The migrations themselves, file name (C(NNNN_description.sql)) to SQL,
        as the controller read them, so that nothing is copied to the host first.
      - Mutually exclusive with O(migrations_dir).
    type: dict
  chainlit_version:
    description:
      - The Chainlit release the app runs (C(2.8.5)). Only the migrations derived
        from its minor line or an older one (C(NNNN_chainlit_X_Y_*.sql)) are
        applied, and the schema is checked for the columns that release uses.
      - The module fails, changing nothing, when the database was already
        migrated by a newer release in a way this one cannot read (a migration's
        C(-- readable by chainlit >= X) line), or when the release is outside the
        supported range.
      - Empty applies every migration and checks for every column.
    type: str
    default: ""
"""

EXAMPLES = r"""
- name: Apply the Chainlit schema migrations
  chainlit_deploy.stack.chainlit_schema:
    migrations_dir: /opt/chainlit/schema
    chainlit_version: 2.12.0
    login_db: chainlit
    login_host: 127.0.0.1
    login_user: chainlit
    login_password: "{{ chainlit_db_password }}"
  no_log: true

- name: Check the schema as the postgres superuser, through the local socket
  chainlit_deploy.stack.chainlit_schema:
    state: checked
    login_db: chainlit
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
repaired:
  description: What was missing although every migration was recorded, and was applied again.
  returned: when the schema was repaired (or would be, in check mode)
  type: str
applied:
  description: Migrations applied by this run (none in check mode).
  returned: always
  type: list
  elements: str
  sample: [0001_chainlit_2_0_base, 0002_chainlit_2_6_thread_metadata_default]
pending:
  description: Migrations not applied yet (after this run; in check mode, the ones it would apply).
  returned: when migrations or migrations_dir is given
  type: list
  elements: str
  sample: []
modified:
  description: Applied migrations whose file changed since they were applied (a warning is issued).
  returned: when migrations or migrations_dir is given
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


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "checked"], "default": "present"},
            "migrations_dir": {"type": "path"},
            "migrations": {"type": "dict"},
            "chainlit_version": {"type": "str", "default": ""},
            **postgres_login.argument_spec(login_db={"required": True}),
        },
        required_if=[("state", "present", ("migrations_dir", "migrations"), True)],
        mutually_exclusive=[("login_host", "login_unix_socket"), ("migrations_dir", "migrations")],
        supports_check_mode=True,
    )
    if postgres_login.PSYCOPG2_IMPORT_ERROR is not None:
        module.fail_json(
            msg=missing_required_lib("psycopg2"),
            exception=str(postgres_login.PSYCOPG2_IMPORT_ERROR),
        )

    params = module.params
    version = params["chainlit_version"]
    if version and chainlit_versions.problem(version):
        if params["state"] == "present":
            module.fail_json(msg=chainlit_versions.problem(version))
        # Checking only: compare with what every supported release needs.
        module.warn(chainlit_versions.problem(version))
        version = ""
    migrations: list[Migration] | None = None
    if params["migrations_dir"] and not Path(params["migrations_dir"]).is_dir():
        module.fail_json(msg=f"migrations_dir {params['migrations_dir']} is not a directory")
    if params["migrations_dir"] or params["migrations"]:
        try:
            known = (
                migrations_from({k: str(v) for k, v in params["migrations"].items()})
                if params["migrations"]
                else discover_migrations(params["migrations_dir"])
            )
            migrations = for_release(known, version)
        except (OSError, ValueError) as exc:
            module.fail_json(msg=f"cannot read migrations: {exc}")

    try:
        conn = postgres_login.connect(params, "ansible-chainlit_schema")
    except postgres_login.DRIVER_ERRORS as exc:
        error = f"cannot connect to database {params['login_db']}: {exc}".strip()
        if module.check_mode and params["state"] == "present" and migrations is not None:
            # Check mode before the server or database exists (a new host):
            # a real run would apply every migration.
            module.warn(f"check mode: {error}; assuming a new database")
            module.exit_json(
                changed=bool(migrations),
                applied=[],
                pending=[m.version for m in migrations],
                modified=[],
                msg=f"check mode: would apply {len(migrations)} migration(s) ({error})",
            )
        module.fail_json(msg=error)

    result: dict[str, Any] = {"changed": False, "applied": []}
    try:
        if migrations is not None:
            refused = downgrade_problem(read_applied(conn), known, version)
            if refused:
                module.fail_json(msg=refused, **result)
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
        report = check_schema(conn, version)
        repairable = (
            params["state"] == "present" and migrations and not report.schema_ok and not run.pending
        )
        if repairable and not module.check_mode:
            # Recorded as applied, yet something they create is gone.
            result["repaired"] = report.summary()
            repair(conn, migrations)
            result["changed"] = True
            report = check_schema(conn, version)
        elif repairable:
            result.update(changed=True, repaired=report.summary())
    except MigrationError as exc:
        module.fail_json(msg=str(exc), **result)
    except postgres_login.DRIVER_ERRORS as exc:
        module.fail_json(msg=f"database error: {exc}".strip(), **result)
    finally:
        conn.close()

    result.update(report.as_dict())
    settled = not result.get("pending") and not (module.check_mode and "repaired" in result)
    if params["state"] == "present" and not report.schema_ok and settled:
        module.fail_json(
            msg=f"schema is still incomplete after the migrations: {report.summary()}", **result
        )
    result["msg"] = report.summary()
    module.exit_json(**result)


if __name__ == "__main__":
    main()
