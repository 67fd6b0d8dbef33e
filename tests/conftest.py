"""Shared fixtures: the project's paths and a throwaway, real PostgreSQL server."""

from __future__ import annotations

import atexit
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import quote

import pytest

ROOT = Path(__file__).resolve().parent.parent
APP_DIR = ROOT / "app"
SCHEMA_DIR = ROOT / "roles" / "chainlit_app" / "files" / "schema"
FIXTURES_DIR = Path(__file__).resolve().parent / "integration" / "fixtures"
# The checkout as the collection chainlit_deploy.stack (`scripts/harness link`,
# run by `make deps`): plugins import their module_utils by that name.
COLLECTIONS_DIR = ROOT / ".ansible" / "collections"
if not (
    COLLECTIONS_DIR / "ansible_collections" / "chainlit_deploy" / "stack" / "galaxy.yml"
).is_file():
    raise RuntimeError(
        f"{COLLECTIONS_DIR} does not hold the collection: run `scripts/harness link` "
        "(make deps does)"
    )

# Importing chainlit creates .files/ and .chainlit/ in its app root, the
# current directory by default: keep them out of the work tree.
_APP_ROOT = tempfile.mkdtemp(prefix="chainlit-test-root-")
os.environ.setdefault("CHAINLIT_APP_ROOT", _APP_ROOT)
atexit.register(shutil.rmtree, _APP_ROOT, True)

for path in (APP_DIR, COLLECTIONS_DIR):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))


def load_module(name: str, path: Path) -> ModuleType:
    """Import a file of a role (role files are not packages)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


APP_ROLE = "chainlit_app"
# Reserved URL characters on purpose: DSNs must percent-encode them.
APP_PASSWORD = "s3cret/with:@and%"


def _postgres_bin_dir() -> Path:
    candidates = [p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()]
    if not candidates:
        pytest.fail(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: "
            "install them with 'scripts/harness host-packages' (Debian package postgresql)"
        )
    return max(candidates, key=lambda p: int(p.parent.name.split(".")[0]))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Database:
    """A database owned by the unprivileged application role."""

    name: str
    host: str
    port: int
    user: str
    password: str

    @property
    def dsn(self) -> str:
        """The URL form Chainlit's DATABASE_URL takes (password percent-encoded)."""
        user, password = quote(self.user, safe=""), quote(self.password, safe="")
        return f"postgresql://{user}:{password}@{self.host}:{self.port}/{self.name}"

    @property
    def module_params(self) -> dict[str, Any]:
        """Connection parameters of the chainlit_schema module."""
        return {
            "login_db": self.name,
            "login_host": self.host,
            "login_port": self.port,
            "login_user": self.user,
            "login_password": self.password,
        }

    def connect(self) -> Any:
        import psycopg2

        return psycopg2.connect(
            host=self.host, port=self.port, dbname=self.name, user=self.user, password=self.password
        )

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        conn = self.connect()
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql, params)
                rows = cursor.fetchall() if cursor.description else []
            conn.commit()
            return rows
        finally:
            conn.close()


@dataclass
class PostgresServer:
    bin_dir: Path
    base_dir: Path
    port: int
    run_as: list[str]
    admin_password: str
    host: str = "127.0.0.1"

    @property
    def socket_dir(self) -> Path:
        return self.base_dir

    def run(self, *args: str) -> None:
        subprocess.run([*self.run_as, *args], check=True, capture_output=True, cwd=self.base_dir)

    def admin(self, sql: str) -> None:
        self.admin_db("postgres", sql)

    def admin_db(self, dbname: str, sql: str) -> None:
        """Run ``sql`` as the superuser in database ``dbname``."""
        import psycopg2

        conn = psycopg2.connect(
            host=self.host,
            port=self.port,
            dbname=dbname,
            user="postgres",
            password=self.admin_password,
        )
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(sql)
        finally:
            conn.close()

    def create_database(self) -> Database:
        name = f"test_{uuid.uuid4().hex[:12]}"
        self.admin(f'CREATE DATABASE "{name}" OWNER "{APP_ROLE}"')
        return Database(name, self.host, self.port, APP_ROLE, APP_PASSWORD)

    def drop_database(self, database: Database) -> None:
        self.admin(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')

    def pg_dump_schema(self, database: Database) -> str:
        env = {**os.environ, "PGPASSWORD": self.admin_password}
        result = subprocess.run(
            [
                str(self.bin_dir / "pg_dump"),
                "--schema-only",
                "--no-owner",
                f"--host={self.host}",
                f"--port={self.port}",
                "--username=postgres",
                database.name,
            ],
            check=True,
            capture_output=True,
            text=True,
            env=env,
        )
        # Recent pg_dump releases wrap the dump in \restrict/\unrestrict lines
        # with a random key: drop them so that two dumps compare equal.
        return "".join(
            line
            for line in result.stdout.splitlines(keepends=True)
            if not line.startswith(("\\restrict ", "\\unrestrict "))
        )


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server from the host's packages, on 127.0.0.1 with scram-sha-256."""
    bin_dir = _postgres_bin_dir()
    base_dir = Path(tempfile.mkdtemp(prefix="chainlit-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:
        # initdb refuses to run as root: the server runs as the postgres user.
        shutil.chown(base_dir, user="postgres", group="postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    admin_password = uuid.uuid4().hex
    pwfile = base_dir / "pwfile"
    pwfile.write_text(admin_password + "\n", encoding="utf-8")
    if run_as:
        shutil.chown(pwfile, user="postgres", group="postgres")
    server = PostgresServer(bin_dir, base_dir, _free_port(), run_as, admin_password)
    data_dir = base_dir / "data"
    server.run(
        str(bin_dir / "initdb"),
        f"--pgdata={data_dir}",
        "--username=postgres",
        f"--pwfile={pwfile}",
        "--auth=scram-sha-256",
        "--encoding=UTF8",
        "--no-sync",
    )
    options = (
        f"-c listen_addresses={server.host} -p {server.port} "
        f"-c unix_socket_directories={base_dir} -c fsync=off -c password_encryption=scram-sha-256"
    )
    server.run(
        str(bin_dir / "pg_ctl"),
        f"--pgdata={data_dir}",
        f"--log={base_dir / 'server.log'}",
        f"--options={options}",
        "--wait",
        "start",
    )
    try:
        _wait_for(server)
        server.admin(f"CREATE ROLE \"{APP_ROLE}\" LOGIN PASSWORD '{APP_PASSWORD}'")
        yield server
    finally:
        server.run(str(bin_dir / "pg_ctl"), f"--pgdata={data_dir}", "--mode=fast", "stop")
        shutil.rmtree(base_dir, ignore_errors=True)


def _wait_for(server: PostgresServer) -> None:
    import psycopg2

    deadline = time.monotonic() + 30
    while True:
        try:
            server.admin("SELECT 1")
            return
        except psycopg2.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


@pytest.fixture
def database(postgres: PostgresServer) -> Iterator[Database]:
    """A fresh, empty database owned by the application role."""
    db = postgres.create_database()
    try:
        yield db
    finally:
        postgres.drop_database(db)


def apply_schema(database: Database, chainlit_version: str = "") -> list[str]:
    """Apply the role's migrations to ``database`` (those of ``chainlit_version``'s
    line and older, or all); return the versions applied."""
    from ansible_collections.chainlit_deploy.stack.plugins.module_utils.migrations import (
        discover_migrations,
        for_release,
        migrate,
    )

    conn = database.connect()
    try:
        return migrate(conn, for_release(discover_migrations(SCHEMA_DIR), chainlit_version)).applied
    finally:
        conn.close()


def load_prisma_fixture(database: Database) -> None:
    """Recreate in ``database`` the schema upstream's Prisma migrations make."""
    sql = (FIXTURES_DIR / "prisma_upstream_schema.sql").read_text(encoding="utf-8")
    conn = database.connect()
    try:
        with conn.cursor() as cursor:
            cursor.execute(sql)
        conn.commit()
    finally:
        conn.close()
