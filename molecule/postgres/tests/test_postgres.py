"""What the postgres role promises, checked on the converged instance.

The server runs and survives a restart of the machine; it is reachable only
from loopback and Docker's default bridge; each app logs in to its own
database with its password (even one full of URL-reserved characters) and
with nothing else; reruns change nothing and no password reaches Ansible's
output. The instance restart comes last: tests run in file order.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import pytest
import testinfra
import yaml
from testinfra.backend.base import CommandResult
from testinfra.host import Host
from testinfra.utils.ansible_runner import AnsibleRunner

SCENARIO_DIR = Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"])
EPHEMERAL_DIR = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
INVENTORY = os.environ["MOLECULE_INVENTORY_FILE"]
CONVERGE = SCENARIO_DIR / "converge.yml"
CONVERGE_VARS = yaml.safe_load(CONVERGE.read_text())[0]["vars"]
DATABASES = CONVERGE_VARS["postgres_databases"]
ANSIBLE_PLAYBOOK = str(Path(sys.executable).with_name("ansible-playbook"))
ANSIBLE_LOG = Path(os.environ["ANSIBLE_LOG_PATH"])

# Made by prepare.yml.
CLIENT_IMAGE = "postgres-test-client:latest"
DENIED_NETWORK = "postgres-test-denied"

EXPECTED_VERSION = {"debian12": "15", "debian13": "17", "ubuntu2404": "16"}

INSTANCE = AnsibleRunner(INVENTORY).get_hosts("all")[0]
DISTRO = INSTANCE.rsplit("-", 1)[1]


@pytest.fixture(scope="module")
def host() -> Host:
    """The instance, reached with `docker exec` (faster than through Ansible)."""
    return testinfra.get_host(f"docker://{INSTANCE}")


@pytest.fixture(scope="module")
def gateway(host: Host) -> str:
    """The Docker bridge gateway inside the instance."""
    found = re.search(r"inet (\S+)/", host.check_output("ip -4 -o addr show docker0"))
    assert found, "docker0 has no IPv4 address"
    return found.group(1)


def generated_password_file(owner: str) -> Path:
    return EPHEMERAL_DIR / "credentials" / INSTANCE / f"postgres-{owner}.password"


def password_of(owner: str) -> str:
    """The owner's password: declared in converge.yml, else the one the role generated."""
    for database in DATABASES:
        if database["owner"] == owner and database.get("password"):
            return database["password"]
    return generated_password_file(owner).read_text().strip()


def all_passwords() -> list[str]:
    return [password_of(owner) for owner in sorted({d["owner"] for d in DATABASES})]


def login_over_tcp(
    host: Host, address: str, user: str, database: str, password: str | None
) -> CommandResult:
    """A TCP login from the instance itself; prints the user it logged in as."""
    env = ["PGPASSWORD=" + password] if password is not None else ["-u", "PGPASSWORD"]
    psql = ["psql", "-X", "-w", "-h", address, "-U", user, "-d", database, "-tA"]
    return host.run(
        shlex.join(["env", *env, "PGCONNECT_TIMEOUT=10", *psql, "-c", "SELECT current_user"])
    )


def login_from_container(host: Host, network: str, url: str) -> CommandResult:
    """A login from a container on a Docker network, with a URL as an app builds it."""
    return host.run(
        "docker run --rm --network %s %s psql -X -w %s -tAc 'SELECT current_user'",
        network,
        CLIENT_IMAGE,
        url,
    )


def database_url(user: str, password: str, address: str, database: str) -> str:
    quoted = urllib.parse.quote(password, safe="")
    return f"postgresql://{user}:{quoted}@{address}:5432/{database}?connect_timeout=10"


def superuser_query(host: Host, query: str) -> list[list[str]]:
    out = host.check_output("runuser -u postgres -- psql -X -tA -F '|' -c %s", query)
    return [line.split("|") for line in out.splitlines() if line]


def run_converge(*args: str) -> subprocess.CompletedProcess[str]:
    """converge.yml again, with Molecule's inventory and configuration, verbose."""
    return subprocess.run(
        [ANSIBLE_PLAYBOOK, "-v", "-i", INVENTORY, *args, str(CONVERGE)],
        capture_output=True,
        text=True,
        check=False,
    )


def recap(output: str) -> dict[str, int]:
    line = re.search(rf"^{re.escape(INSTANCE)}\s*:\s*(ok=.*)$", output, re.MULTILINE)
    assert line, output
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line.group(1))}


def test_the_distribution_postgresql_runs_and_starts_at_boot(host: Host) -> None:
    clusters = host.check_output("pg_lsclusters --no-header").split()
    assert clusters[:4] == [EXPECTED_VERSION[DISTRO], "main", "5432", "online"]
    assert host.service("postgresql").is_enabled
    assert host.service(f"postgresql@{EXPECTED_VERSION[DISTRO]}-main").is_running


def test_it_listens_on_loopback_and_the_bridge_gateway_only(host: Host, gateway: str) -> None:
    sockets = host.check_output("ss -Hltnp")
    addresses = {
        line.split()[3].rsplit(":", 1)[0] for line in sockets.splitlines() if '"postgres"' in line
    }
    assert {"127.0.0.1", gateway} <= addresses
    assert addresses <= {"127.0.0.1", "[::1]", gateway}


@pytest.mark.parametrize("database", DATABASES, ids=[d["name"] for d in DATABASES])
def test_each_app_logs_in_over_loopback_with_its_password(
    host: Host, database: dict[str, str]
) -> None:
    owner = database["owner"]
    login = login_over_tcp(host, "127.0.0.1", owner, database["name"], password_of(owner))
    assert login.rc == 0, login.stderr
    assert login.stdout.strip() == owner


def test_a_wrong_or_missing_password_is_refused(host: Host) -> None:
    wrong = login_over_tcp(host, "127.0.0.1", "chainlit", "chainlit", "not-the-password")
    assert wrong.rc != 0
    assert 'password authentication failed for user "chainlit"' in wrong.stderr
    missing = login_over_tcp(host, "127.0.0.1", "chainlit", "chainlit", None)
    assert missing.rc != 0
    assert "no password supplied" in missing.stderr


def test_an_app_reaches_only_its_own_database(host: Host) -> None:
    other = login_over_tcp(host, "127.0.0.1", "reserved", "chainlit", password_of("reserved"))
    assert other.rc != 0
    assert "no pg_hba.conf entry" in other.stderr
    superuser = login_over_tcp(host, "127.0.0.1", "postgres", "postgres", "anything")
    assert superuser.rc != 0
    assert "no pg_hba.conf entry" in superuser.stderr


def test_a_container_on_the_default_bridge_logs_in_with_a_url(host: Host, gateway: str) -> None:
    for database in DATABASES:
        url = database_url(
            database["owner"], password_of(database["owner"]), gateway, database["name"]
        )
        login = login_from_container(host, "bridge", url)
        assert login.rc == 0, login.stderr
        assert login.stdout.strip() == database["owner"]


def test_the_url_reserved_password_is_the_one_declared() -> None:
    assert set("@:/%#?&= ") <= set(password_of("reserved"))


def test_a_container_on_another_network_is_refused(host: Host, gateway: str) -> None:
    url = database_url("chainlit", password_of("chainlit"), gateway, "chainlit")
    login = login_from_container(host, DENIED_NETWORK, url)
    assert login.rc != 0
    assert "no pg_hba.conf entry" in login.stderr


def test_network_logins_all_need_a_password(host: Host) -> None:
    assert superuser_query(host, "SHOW password_encryption") == [["scram-sha-256"]]
    rules = superuser_query(
        host,
        "SELECT type, array_to_string(user_name, ','), auth_method, coalesce(error, '')"
        " FROM pg_hba_file_rules",
    )
    assert rules
    for kind, users, method, error in rules:
        assert not error
        if kind == "local":
            assert (users, method) == ("postgres", "peer")
        else:
            assert method == "scram-sha-256"
    verifiers = superuser_query(
        host, "SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ('chainlit', 'reserved')"
    )
    assert len(verifiers) == 2
    assert all(verifier.startswith("SCRAM-SHA-256$") for _, verifier in verifiers)


def test_each_database_is_owned_by_its_app_which_is_not_privileged(host: Host) -> None:
    rows = superuser_query(
        host,
        "SELECT d.datname, r.rolname, r.rolsuper, r.rolcreaterole, r.rolcreatedb,"
        " pg_encoding_to_char(d.encoding) FROM pg_database d JOIN pg_roles r ON r.oid = d.datdba"
        " WHERE d.datname IN ('chainlit', 'reserved') ORDER BY 1",
    )
    assert rows == [
        ["chainlit", "chainlit", "f", "f", "f", "UTF8"],
        ["reserved", "reserved", "f", "f", "f", "UTF8"],
    ]


def test_the_tuning_variables_are_in_force(host: Host) -> None:
    rows = superuser_query(
        host,
        "SELECT name, setting, unit, pending_restart FROM pg_settings"
        " WHERE name IN ('max_connections', 'shared_buffers', 'log_connections') ORDER BY 1",
    )
    assert rows == [
        ["log_connections", "on", "", "f"],
        ["max_connections", "50", "", "f"],
        ["shared_buffers", "8192", "8kB", "f"],
    ]


def test_a_generated_password_is_kept_private_on_the_controller() -> None:
    path = generated_password_file("chainlit")
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert re.fullmatch(r"[A-Za-z0-9]{32}", password_of("chainlit"))
    assert not generated_password_file("reserved").exists()


def test_check_mode_on_the_converged_host_reports_no_change() -> None:
    run = run_converge("--check", "--diff")
    counts = recap(run.stdout)
    assert run.returncode == 0, run.stdout + run.stderr
    assert counts["changed"] == 0, run.stdout


def server_state(host: Host) -> tuple[str, str]:
    """When the server started, and the checksums of the files the role writes."""
    started = host.check_output(
        "runuser -u postgres -- psql -X -tAc 'SELECT pg_postmaster_start_time()'"
    )
    sums = host.check_output(
        "sha256sum /etc/postgresql/*/main/pg_hba.conf /etc/postgresql/*/main/conf.d/*"
    )
    return started, sums


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ('{"postgres_work_mem": "lots"}', "invalid value for parameter"),
        ('{"postgres_app_networks": ["1:2:3:4:5:6:7:8:9/64"]}', "refuses the new pg_hba.conf"),
    ],
    ids=["settings", "pg_hba"],
)
def test_a_configuration_the_server_refuses_is_not_applied(
    host: Host, override: str, complaint: str
) -> None:
    before = server_state(host)
    run = run_converge("-e", override)
    assert run.returncode != 0
    assert complaint in run.stdout + run.stderr
    assert server_state(host) == before


def test_a_setting_that_allows_it_is_applied_by_a_reload_only(host: Host) -> None:
    started = server_state(host)[0]
    changed = run_converge("-e", "postgres_work_mem=8MB")
    assert changed.returncode == 0, changed.stdout + changed.stderr
    assert superuser_query(host, "SHOW work_mem") == [["8MB"]]
    restored = run_converge()
    assert restored.returncode == 0, restored.stdout + restored.stderr
    assert recap(changed.stdout)["changed"] == recap(restored.stdout)["changed"] == 2
    assert superuser_query(host, "SHOW work_mem") == [["4MB"]]
    assert server_state(host)[0] == started


def test_without_docker0_the_role_stops_before_any_change() -> None:
    run = run_converge("-e", '{"postgres_docker_bridge_gateway": ""}')
    counts = recap(run.stdout)
    assert run.returncode != 0
    assert counts["failed"] == 1
    assert counts["changed"] == 0
    output = run.stdout + run.stderr
    assert "postgres_docker_bridge_gateway" in output
    assert "no docker0 interface" in output


def test_no_password_appears_in_the_ansible_output() -> None:
    # Molecule's converge and idempotence runs and this module's runs, all with -v.
    log = ANSIBLE_LOG.read_text()
    assert "Create the login roles with their passwords" in log
    assert "censored" in log
    for password in all_passwords():
        for form in {password, urllib.parse.quote(password, safe=""), urllib.parse.quote(password)}:
            assert form not in log


def test_the_server_comes_back_after_the_instance_restarts(host: Host, gateway: str) -> None:
    subprocess.run(["docker", "restart", INSTANCE], check=True, capture_output=True)
    deadline = time.monotonic() + 120
    state = ""
    while time.monotonic() < deadline:
        state = host.run("systemctl is-system-running").stdout.strip()
        if state in ("running", "degraded"):
            break
        time.sleep(2)
    assert state == "running", host.run("systemctl --failed").stdout
    assert host.service(f"postgresql@{EXPECTED_VERSION[DISTRO]}-main").is_running
    test_it_listens_on_loopback_and_the_bridge_gateway_only(host, gateway)
    url = database_url("chainlit", password_of("chainlit"), gateway, "chainlit")
    login = login_from_container(host, "bridge", url)
    assert login.rc == 0, login.stderr
