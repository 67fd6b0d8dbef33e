"""What the backup role promises, checked on the converged instance.

A dump is private to postgres, complete (pg_restore reads every Chainlit
table) and copied unchanged to the controller; only the newest dumps are kept
there and on the host; check mode writes nothing. A restore gives back every
row, into the same database or into an empty one; a missing or unreadable
file is refused, and a restore failing midway leaves the database as it was.
The fingerprint counts and hashes the rows up to a cut and ignores later ones.
Tests run in file order and put the database back as prepare.yml left it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import testinfra
from testinfra.host import Host

BACKUP_DIR = "/var/backups/chainlit-deploy"
DUMP_NAME = re.compile(r"^chainlit-\d{8}T\d{6}Z\.dump$")
# Made by prepare.yml.
SCHEMA_SQL = "/opt/backup-test/schema.sql"
SEED_SQL = "/opt/backup-test/seed.sql"
PRISTINE_DUMP = "/var/lib/postgresql/pristine.dump"
TABLES = ["User", "Thread", "Step", "Element", "Feedback"]
SEEDED_ROWS = {"User": 2, "Thread": 3, "Step": 6, "Element": 1, "Feedback": 1}
SEEDED_USER_IDS = [
    "0b7c2a52-0000-4000-8000-000000000001",
    "0b7c2a52-0000-4000-8000-000000000002",
]
# The tasks that may report a change when the role runs again: the new dump,
# its copy, and the retention.
DUMP_TASKS = {
    "Backup | Dump the database to a temporary file",
    "Backup | Make the dump private to postgres",
    "Backup | Give the dump its final name",
    "Backup | Copy the dump to the controller",
    "Backup | Make the copy private",
    "Backup | Delete the dumps beyond the newest backup_keep on the host",
    "Backup | Delete the copies beyond the newest backup_keep on the controller",
}

Runner = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def host(instance_name: str) -> Host:
    """The instance, reached with `docker exec`."""
    return testinfra.get_host(f"docker://{instance_name}")


@pytest.fixture(scope="module")
def fetch_dir(instance_name: str) -> Path:
    """Where converge.yml has the role copy the dumps on the controller."""
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "backups", instance_name)


def psql(host: Host, sql: str, database: str = "chainlit") -> str:
    """Run SQL as the superuser over the local socket; unaligned output."""
    command = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-tA"]
    command += ["-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql]
    return host.check_output(shlex.join(command))


def psql_file(host: Host, path: str) -> None:
    """Run a SQL file as the database's owner, as the app's migrations do."""
    command = ["runuser", "-u", "postgres", "--", "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    command += ["-d", "chainlit", "-c", "SET ROLE chainlit", "-f", path]
    host.check_output(shlex.join(command))


def contents(host: Host) -> dict[str, str]:
    """Every row of the Chainlit tables and of the migrations record, as JSON."""
    found = {
        table: psql(
            host,
            f'SELECT coalesce(json_agg(t ORDER BY id COLLATE "C"), \'[]\') FROM "{table}" t',
        )
        for table in TABLES
    }
    found["chainlit_schema_migrations"] = psql(
        host, "SELECT json_agg(m ORDER BY version) FROM chainlit_schema_migrations m"
    )
    return found


def host_dumps(host: Host) -> list[str]:
    names = host.check_output("ls -A %s", BACKUP_DIR).split()
    return sorted(name for name in names if DUMP_NAME.match(name))


def controller_dumps(fetch_dir: Path) -> list[str]:
    return sorted(path.name for path in fetch_dir.iterdir() if DUMP_NAME.match(path.name))


def changed_tasks(output: str) -> set[str]:
    """Names of the tasks that reported a change, from the default callback's output."""
    changed: set[str] = set()
    task = ""
    for line in output.splitlines():
        header = re.match(r"TASK \[(?:(?:chainlit_deploy\.stack\.)?backup : )?(.+?)\] \*+", line)
        if header:
            task = header.group(1)
        elif line.startswith("changed: "):
            changed.add(task)
    return changed


def fingerprint(run_playbook: Runner, cut: str = "", *args: str) -> dict:
    result = run_playbook("fingerprint.yml", {"backup_fingerprint_cut": cut}, *args)
    assert result.returncode == 0, result.stdout
    line = re.search(r'"msg": ("FINGERPRINT .*")$', result.stdout, re.MULTILINE)
    assert line, result.stdout
    return json.loads(json.loads(line.group(1)).removeprefix("FINGERPRINT "))


def recreate_database(host: Host) -> None:
    """Drop the app's database and create it empty, as role postgres does."""
    psql(host, "DROP DATABASE chainlit WITH (FORCE)", "postgres")
    psql(
        host,
        "CREATE DATABASE chainlit OWNER chainlit TEMPLATE template0 ENCODING 'UTF8' "
        "LC_COLLATE 'C.UTF-8' LC_CTYPE 'C.UTF-8'",
        "postgres",
    )


def add_thread(host: Host, thread_id: str, when: str = "now() AT TIME ZONE 'UTC'") -> None:
    """A chat written by the app: a thread and its first step."""
    psql(
        host,
        f"""INSERT INTO "Thread" (id, "createdAt", metadata, name)
            VALUES ('{thread_id}', {when}, '{{}}', 'later chat');
            INSERT INTO "Step" (id, "createdAt", "threadId", metadata, type, "startTime", "endTime")
            VALUES ('{thread_id}-step', {when}, '{thread_id}', '{{}}', 'user_message',
                    {when}, {when})""",
    )


@pytest.fixture
def newest_dump(run_playbook: Runner, host: Host) -> str:
    """A fresh dump of the database as it is now, on the host."""
    result = run_playbook()
    assert result.returncode == 0, result.stdout
    return f"{BACKUP_DIR}/{host_dumps(host)[-1]}"


@pytest.fixture(scope="module")
def pristine(host: Host) -> dict[str, str]:
    """The rows prepare.yml wrote, and a dump of them made without the role."""
    rows = contents(host)
    found = {table: len(json.loads(rows[table])) for table in TABLES}
    assert found == SEEDED_ROWS
    host.check_output("runuser -u postgres -- pg_dump -Fc -d chainlit -f %s", PRISTINE_DUMP)
    return rows


@pytest.fixture
def seeded(host: Host, pristine: dict[str, str]) -> Iterator[dict[str, str]]:
    """The rows prepare.yml wrote; put back after the test whatever it did."""
    assert contents(host) == pristine
    yield pristine
    if contents(host) != pristine:
        recreate_database(host)
        host.check_output(
            "runuser -u postgres -- pg_restore -d chainlit --no-owner --role=chainlit %s",
            PRISTINE_DUMP,
        )
        assert contents(host) == pristine


def test_the_dump_is_private_to_postgres_and_holds_every_chainlit_table(host: Host) -> None:
    directory = host.file(BACKUP_DIR)
    assert directory.is_directory
    assert (directory.user, directory.group, directory.mode) == ("postgres", "postgres", 0o700)
    dumps = host_dumps(host)
    assert dumps, f"no dump in {BACKUP_DIR}"
    dump = host.file(f"{BACKUP_DIR}/{dumps[-1]}")
    assert (dump.user, dump.group, dump.mode) == ("postgres", "postgres", 0o600)
    toc = host.check_output("pg_restore --list %s", dump.path)
    for table in [*TABLES, "chainlit_schema_migrations"]:
        assert re.search(rf"TABLE DATA public {table} chainlit$", toc, re.MULTILINE), table
    assert host.check_output("ls -A %s", BACKUP_DIR).split() == dumps, "stray files"


def test_the_controller_holds_an_identical_private_copy(host: Host, fetch_dir: Path) -> None:
    newest = host_dumps(host)[-1]
    assert controller_dumps(fetch_dir)[-1] == newest
    copy = fetch_dir / newest
    assert copy.stat().st_mode & 0o777 == 0o600
    assert fetch_dir.stat().st_mode & 0o777 == 0o700
    on_host = host.check_output("sha256sum %s", f"{BACKUP_DIR}/{newest}").split()[0]
    assert hashlib.sha256(copy.read_bytes()).hexdigest() == on_host


def test_a_rerun_takes_one_new_dump_and_changes_nothing_else(
    run_playbook: Runner, host: Host, fetch_dir: Path
) -> None:
    before = host_dumps(host)
    result = run_playbook()
    assert result.returncode == 0, result.stdout
    new = sorted(set(host_dumps(host)) - set(before))
    assert len(new) == 1
    assert new[0] in controller_dumps(fetch_dir)
    changed = changed_tasks(result.stdout)
    assert "Backup | Dump the database to a temporary file" in changed
    assert changed <= DUMP_TASKS, changed - DUMP_TASKS


def test_the_backup_playbook_prints_where_the_dump_and_its_copy_are(
    run_playbook: Runner, host: Host, fetch_dir: Path, instance_name: str
) -> None:
    before = host_dumps(host)
    result = run_playbook("backup_playbook.yml", {"backup_fetch_dir": str(fetch_dir)})
    assert result.returncode == 0, result.stdout
    new = sorted(set(host_dumps(host)) - set(before))
    assert len(new) == 1
    assert f"dump on {instance_name}: {BACKUP_DIR}/{new[0]}" in result.stdout
    assert f"copy on the controller: {fetch_dir / new[0]}" in result.stdout


def test_check_mode_writes_and_deletes_nothing(
    run_playbook: Runner, host: Host, fetch_dir: Path
) -> None:
    on_host = host.check_output("ls -A %s", BACKUP_DIR)
    on_controller = sorted(path.name for path in fetch_dir.iterdir())
    # With backup_keep 1 a real run would delete every older dump.
    result = run_playbook("converge.yml", {"backup_keep": 1}, "--check")
    assert result.returncode == 0, result.stdout
    assert "Check mode: would dump chainlit into" in result.stdout
    assert "Backup | Delete the dumps beyond the newest backup_keep on the host" in (
        changed_tasks(result.stdout)
    )
    assert host.check_output("ls -A %s", BACKUP_DIR) == on_host
    assert sorted(path.name for path in fetch_dir.iterdir()) == on_controller


def test_only_the_newest_dumps_are_kept_on_the_host_and_the_controller(
    run_playbook: Runner, host: Host, fetch_dir: Path
) -> None:
    keep = 2
    # Files that are not dumps of this database are never deleted.
    others = ["notes.txt", "otherdb-20200101T000000Z.dump"]
    for name in others:
        host.check_output("install -o postgres -m 0600 /dev/null %s", f"{BACKUP_DIR}/{name}")
    (fetch_dir / others[1]).write_bytes(b"")
    taken: list[str] = []
    try:
        for _ in range(keep + 2):
            before = set(host_dumps(host))
            result = run_playbook("converge.yml", {"backup_keep": keep})
            assert result.returncode == 0, result.stdout
            taken += sorted(set(host_dumps(host)) - before)
        assert len(taken) == keep + 2
        assert host_dumps(host) == taken[-keep:]
        assert controller_dumps(fetch_dir) == taken[-keep:]
        for name in others:
            assert host.file(f"{BACKUP_DIR}/{name}").exists, name
        assert (fetch_dir / others[1]).exists()
    finally:
        host.check_output("rm -f %s %s", *(f"{BACKUP_DIR}/{name}" for name in others))
        (fetch_dir / others[1]).unlink(missing_ok=True)


def test_the_fingerprint_counts_and_hashes_the_rows(run_playbook: Runner) -> None:
    found = fingerprint(run_playbook)
    assert found["database"] == "chainlit"
    assert {table: counted["rows"] for table, counted in found["tables"].items()} == SEEDED_ROWS
    ids_md5 = hashlib.md5(",".join(sorted(SEEDED_USER_IDS)).encode()).hexdigest()
    assert found["tables"]["User"]["ids_md5"] == ids_md5


def test_a_fingerprint_with_a_cut_ignores_later_rows(
    run_playbook: Runner, host: Host, seeded: dict[str, str]
) -> None:
    first = fingerprint(run_playbook)
    add_thread(host, "5a5b0000-0000-4000-8000-00000000000a")
    same_cut = fingerprint(run_playbook, first["cut"])
    assert same_cut == first
    in_check_mode = fingerprint(run_playbook, first["cut"], "--check")
    assert in_check_mode == first
    now = fingerprint(run_playbook)
    assert now["cut"] > first["cut"]
    assert now["tables"]["Thread"]["rows"] == first["tables"]["Thread"]["rows"] + 1
    assert now["tables"]["Step"]["rows"] == first["tables"]["Step"]["rows"] + 1
    assert now["tables"]["Thread"]["ids_md5"] != first["tables"]["Thread"]["ids_md5"]
    assert now["tables"]["User"] == first["tables"]["User"]


def test_a_fingerprint_refuses_a_malformed_cut(run_playbook: Runner) -> None:
    result = run_playbook("fingerprint.yml", {"backup_fingerprint_cut": "yesterday"})
    assert result.returncode != 0
    assert "backup_fingerprint_cut is 'yesterday'" in result.stdout


def test_a_restore_on_the_same_host_gives_back_the_dumped_rows(
    run_playbook: Runner, host: Host, seeded: dict[str, str], newest_dump: str
) -> None:
    add_thread(host, "5a5b0000-0000-4000-8000-00000000000b")
    assert contents(host) != seeded
    result = run_playbook("restore.yml", {"backup_restore_file": newest_dump})
    assert result.returncode == 0, result.stdout
    assert contents(host) == seeded
    assert not host.file(f"{BACKUP_DIR}/.restore-chainlit.dump").exists


def test_a_restore_into_an_emptied_database_gives_back_every_row(
    run_playbook: Runner, host: Host, seeded: dict[str, str], newest_dump: str
) -> None:
    before = fingerprint(run_playbook)
    recreate_database(host)
    assert psql(host, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0"
    result = run_playbook("restore.yml", {"backup_restore_file": newest_dump})
    assert result.returncode == 0, result.stdout
    assert fingerprint(run_playbook, before["cut"]) == before
    assert contents(host) == seeded
    owners = psql(
        host,
        "SELECT DISTINCT tableowner FROM pg_tables WHERE schemaname = 'public' "
        "UNION SELECT DISTINCT pg_get_userbyid(typowner) FROM pg_type WHERE typname = 'StepType'",
    )
    assert owners.split() == ["chainlit"]


def test_a_controller_dump_restores_into_a_freshly_deployed_database(
    run_playbook: Runner, host: Host, fetch_dir: Path, seeded: dict[str, str], newest_dump: str
) -> None:
    controller_file = fetch_dir / Path(newest_dump).name
    assert controller_file.exists()
    # As a deploy leaves it: the schema and the migrations record, no rows.
    recreate_database(host)
    psql_file(host, SCHEMA_SQL)
    assert psql(host, 'SELECT count(*) FROM "Thread"') == "0"
    result = run_playbook("restore.yml", {"backup_restore_src": str(controller_file)})
    assert result.returncode == 0, result.stdout
    assert contents(host) == seeded


@pytest.fixture(scope="module")
def unreadable_files(host: Host, fetch_dir: Path) -> dict[str, str]:
    """Files that are not dumps, on the host and on the controller."""
    host.check_output("head -c 8192 /dev/urandom > /root/random.dump")
    on_controller = fetch_dir.parent / "random.dump"
    on_controller.write_bytes(os.urandom(8192))
    return {"host": "/root/random.dump", "controller": str(on_controller)}


@pytest.mark.parametrize(
    ("extra_vars", "message"),
    [
        (
            {"backup_restore_file": f"{BACKUP_DIR}/chainlit-20000101T000000Z.dump"},
            "backup_restore_file: /var/backups/chainlit-deploy/chainlit-20000101T000000Z.dump "
            "is not a file on",
        ),
        (
            {"backup_restore_src": "/nonexistent/chainlit.dump"},
            "backup_restore_src: /nonexistent/chainlit.dump is not a file on the controller",
        ),
        ({"backup_restore_file": "host"}, "is not a custom-format dump"),
        ({"backup_restore_src": "controller"}, "is not a custom-format dump"),
        ({"backup_restore_file": SEED_SQL}, "is not a custom-format dump"),
        ({"backup_restore_file": "relative.dump"}, "Set exactly one of backup_restore_file"),
        (
            {"backup_restore_file": SEED_SQL, "backup_restore_src": "/nonexistent/chainlit.dump"},
            "Set exactly one of backup_restore_file",
        ),
    ],
    ids=["missing", "missing-src", "random", "random-src", "plain-sql", "relative", "both"],
)
def test_a_file_that_is_not_a_dump_is_refused_and_nothing_changes(
    run_playbook: Runner,
    host: Host,
    seeded: dict[str, str],
    unreadable_files: dict[str, str],
    extra_vars: dict[str, str],
    message: str,
) -> None:
    extra_vars = {key: unreadable_files.get(value, value) for key, value in extra_vars.items()}
    result = run_playbook("restore.yml", extra_vars)
    assert result.returncode != 0
    assert message in result.stdout
    if "custom-format" in message:
        assert f"{next(iter(extra_vars))}: " in result.stdout
        assert "Nothing was changed" in result.stdout
    assert contents(host) == seeded
    assert not host.file(f"{BACKUP_DIR}/.restore-chainlit.dump").exists


@pytest.fixture
def truncated_dump(host: Host, newest_dump: str) -> str:
    """A dump cut short, as by a full disk: its table of contents is whole."""
    size = int(host.check_output("stat -c %%s %s", newest_dump))
    host.check_output("head -c %s %s > /root/truncated.dump", str(size - 16), newest_dump)
    return "/root/truncated.dump"


@pytest.fixture
def conflicting_dump(host: Host) -> Iterator[str]:
    """A dump of another database: its "Feedback" is another table, and it has
    an event trigger, which only a superuser may create (restored last)."""
    psql(host, "DROP DATABASE IF EXISTS conflict", "postgres")
    psql(host, "CREATE DATABASE conflict", "postgres")
    psql(
        host,
        """CREATE TABLE "Feedback" (id text PRIMARY KEY, "createdAt" timestamp(3), note text);
           INSERT INTO "Feedback" VALUES ('other', now(), 'from another database');
           CREATE FUNCTION noop() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;
           CREATE EVENT TRIGGER noop ON ddl_command_start EXECUTE FUNCTION noop()""",
        "conflict",
    )
    host.check_output(
        "runuser -u postgres -- pg_dump -Fc -d conflict -f /var/lib/postgresql/conflict.dump"
    )
    yield "/var/lib/postgresql/conflict.dump"
    psql(host, "DROP DATABASE conflict", "postgres")


@pytest.mark.parametrize("broken", ["truncated_dump", "conflicting_dump"])
def test_a_restore_failing_midway_leaves_the_database_as_it_was(
    run_playbook: Runner,
    host: Host,
    seeded: dict[str, str],
    request: pytest.FixtureRequest,
    broken: str,
) -> None:
    dump = request.getfixturevalue(broken)
    # Written after the dump: a complete restore would remove it.
    add_thread(host, "5a5b0000-0000-4000-8000-00000000000c")
    before = contents(host)
    # The file passes the check of its table of contents: it fails midway.
    assert host.run("pg_restore --list %s", dump).rc == 0
    result = run_playbook("restore.yml", {"backup_restore_file": dump})
    assert result.returncode != 0
    assert f"The restore of {dump} into chainlit failed and was rolled back" in result.stdout
    assert "the database was left as it was" in result.stdout
    assert contents(host) == before
    assert not host.file(f"{BACKUP_DIR}/.restore-chainlit.dump").exists


def test_a_restore_in_check_mode_changes_nothing(
    run_playbook: Runner, host: Host, fetch_dir: Path, seeded: dict[str, str], newest_dump: str
) -> None:
    add_thread(host, "5a5b0000-0000-4000-8000-00000000000d")
    before = contents(host)
    result = run_playbook("restore.yml", {"backup_restore_file": newest_dump}, "--check")
    assert result.returncode == 0, result.stdout
    assert f"Check mode: would restore {newest_dump} into chainlit" in result.stdout
    controller_file = str(fetch_dir / Path(newest_dump).name)
    result = run_playbook("restore.yml", {"backup_restore_src": controller_file}, "--check")
    assert result.returncode == 0, result.stdout
    assert f"Check mode: would copy {controller_file} from the controller" in result.stdout
    assert contents(host) == before
    assert not host.file(f"{BACKUP_DIR}/.restore-chainlit.dump").exists
