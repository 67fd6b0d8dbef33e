"""What the postgres role promises, checked on the converged instance.

The server runs and survives a restart of the machine; it is reachable only
from loopback and the app's Docker network (not docker0); each app logs in to its own
database with its password (even one full of URL-reserved characters) and
with nothing else; reruns change nothing; a configuration the server would
refuse never reaches it; no password appears in Ansible's output. Tests run in
file order: the instance restart comes last.
"""

from __future__ import annotations

import os
import re
import shlex
import urllib.parse
from collections.abc import Callable
from pathlib import Path

import pytest
import testinfra
import yaml
from testinfra.backend.base import CommandResult
from testinfra.host import Host

CONVERGE_VARS = yaml.safe_load(
    (Path(os.environ["MOLECULE_SCENARIO_DIRECTORY"]) / "converge.yml").read_text()
)[0]["vars"]
DATABASES: list[dict[str, str]] = CONVERGE_VARS["postgres_databases"]
OWNERS = sorted({database["owner"] for database in DATABASES})

# Made by prepare.yml.
CLIENT_IMAGE = "postgres-test-client:latest"
# The app's network, which the docker role creates (docker_app_network).
APP_NETWORK = "chainlit"
DENIED_NETWORK = "postgres-test-denied"
DENIED_SUBNET = "10.213.0.0/24"

VERSION_OF_DISTRO = {"debian12": "15", "debian13": "17", "ubuntu2404": "16"}


@pytest.fixture(scope="module")
def host(instance_name: str) -> Host:
    """The instance, reached with `docker exec` (faster than through Ansible)."""
    return testinfra.get_host(f"docker://{instance_name}")


@pytest.fixture(scope="module")
def version(instance_name: str) -> str:
    """The PostgreSQL major version the distribution ships."""
    return VERSION_OF_DISTRO[instance_name.rsplit("-", 1)[1]]


@pytest.fixture(scope="module")
def gateway(host: Host) -> str:
    """The Docker bridge gateway inside the instance."""
    found = re.search(r"inet (\S+)/", host.check_output("ip -4 -o addr show docker0"))
    assert found, "docker0 has no IPv4 address"
    return found.group(1)


@pytest.fixture(scope="module")
def credentials_dir(instance_name: str) -> Path:
    """Where the role keeps the passwords it generated for the instance."""
    return Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "credentials", instance_name)


@pytest.fixture(scope="module")
def passwords(credentials_dir: Path) -> dict[str, str]:
    """Each owner's password: declared in converge.yml, else the one the role generated."""
    declared = {d["owner"]: d["password"] for d in DATABASES if d.get("password")}
    return {
        owner: declared.get(owner)
        or (credentials_dir / f"postgres-{owner}.password").read_text().strip()
        for owner in OWNERS
    }


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


def server_state(host: Host) -> tuple[str, str]:
    """When the server started, and the checksums of the files the role writes."""
    started = superuser_query(host, "SELECT pg_postmaster_start_time()")[0][0]
    sums = host.check_output(
        "sha256sum /etc/postgresql/*/main/pg_hba.conf /etc/postgresql/*/main/conf.d/*"
    )
    return started, sums


def recap(output: str) -> dict[str, int]:
    """The counts of the play recap (one host)."""
    line = re.search(r"^\S+\s*:\s*(ok=\d+.*)$", output, re.MULTILINE)
    assert line, output
    return {key: int(value) for key, value in re.findall(r"(\w+)=(\d+)", line.group(1))}


def test_the_distribution_postgresql_runs_and_starts_at_boot(host: Host, version: str) -> None:
    clusters = host.check_output("pg_lsclusters --no-header").split()
    assert clusters[:4] == [version, "main", "5432", "online"]
    assert host.service("postgresql").is_enabled
    assert host.service(f"postgresql@{version}-main").is_running


def test_it_listens_on_loopback_and_the_bridge_gateway_only(host: Host, gateway: str) -> None:
    sockets = host.check_output("ss -Hltnp")
    addresses = {
        line.split()[3].rsplit(":", 1)[0] for line in sockets.splitlines() if '"postgres"' in line
    }
    assert {"127.0.0.1", gateway} <= addresses
    assert addresses <= {"127.0.0.1", "[::1]", gateway}


@pytest.mark.parametrize("database", DATABASES, ids=[d["name"] for d in DATABASES])
def test_each_app_logs_in_over_loopback_with_its_password(
    host: Host, passwords: dict[str, str], database: dict[str, str]
) -> None:
    owner = database["owner"]
    login = login_over_tcp(host, "127.0.0.1", owner, database["name"], passwords[owner])
    assert login.rc == 0, login.stderr
    assert login.stdout.strip() == owner


def test_a_wrong_or_missing_password_is_refused(host: Host) -> None:
    wrong = login_over_tcp(host, "127.0.0.1", "chainlit", "chainlit", "not-the-password")
    assert wrong.rc != 0
    assert 'password authentication failed for user "chainlit"' in wrong.stderr
    missing = login_over_tcp(host, "127.0.0.1", "chainlit", "chainlit", None)
    assert missing.rc != 0
    assert "no password supplied" in missing.stderr


def test_an_app_reaches_only_its_own_database(host: Host, passwords: dict[str, str]) -> None:
    other = login_over_tcp(host, "127.0.0.1", "reserved", "chainlit", passwords["reserved"])
    assert other.rc != 0
    assert "no pg_hba.conf entry" in other.stderr
    superuser = login_over_tcp(host, "127.0.0.1", "postgres", "postgres", "anything")
    assert superuser.rc != 0
    assert "no pg_hba.conf entry" in superuser.stderr


def test_the_reserved_password_has_every_character_a_url_must_escape(
    passwords: dict[str, str],
) -> None:
    assert set("@:/%#?&= ") <= set(passwords["reserved"])


@pytest.mark.parametrize("database", DATABASES, ids=[d["name"] for d in DATABASES])
def test_a_container_on_the_apps_network_logs_in_with_a_url(
    host: Host, gateway: str, passwords: dict[str, str], database: dict[str, str]
) -> None:
    """From the app's network (role docker's docker_app_network), at the
    docker0 address host.docker.internal stands for, as the app does."""
    owner = database["owner"]
    url = database_url(owner, passwords[owner], gateway, database["name"])
    login = login_from_container(host, APP_NETWORK, url)
    assert login.rc == 0, login.stderr
    assert login.stdout.strip() == owner


# Docker's default bridge (docker0) too: any container started with a plain
# `docker run` lands there, and must not log in even with the password.
@pytest.mark.parametrize(
    "network", [DENIED_NETWORK, "bridge"], ids=["user-defined", "default-bridge"]
)
def test_a_container_on_another_network_is_refused(
    host: Host, gateway: str, passwords: dict[str, str], network: str
) -> None:
    url = database_url("chainlit", passwords["chainlit"], gateway, "chainlit")
    login = login_from_container(host, network, url)
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


def test_a_generated_password_is_kept_private_on_the_controller(
    credentials_dir: Path, passwords: dict[str, str]
) -> None:
    path = credentials_dir / "postgres-chainlit.password"
    assert path.stat().st_mode & 0o777 == 0o600
    assert credentials_dir.stat().st_mode & 0o777 == 0o700
    assert re.fullmatch(r"[A-Za-z0-9]{32}", passwords["chainlit"])
    # A declared password is used as is: nothing generated for it.
    assert not (credentials_dir / "postgres-reserved.password").exists()


def test_check_mode_on_the_converged_host_reports_no_change(run_playbook: Callable) -> None:
    run = run_playbook("converge.yml", None, "--check", "--diff")
    assert run.returncode == 0, run.stdout
    assert recap(run.stdout)["changed"] == 0, run.stdout


def test_check_mode_before_the_apps_network_exists_previews_and_changes_nothing(
    host: Host, run_playbook: Callable
) -> None:
    """An upgrade previewed with --check: Docker runs but the app's network is
    not there yet (the docker role creates it in the real run)."""
    subnet = host.check_output(
        "docker network inspect %s -f '{{(index .IPAM.Config 0).Subnet}}'", APP_NETWORK
    ).strip()
    before = server_state(host)
    host.run_expect([0], "docker network rm %s", APP_NETWORK)
    try:
        run = run_playbook("converge.yml", None, "--check", "--diff")
        assert run.returncode == 0, run.stdout
        assert "no docker0 or chainlit0 interface yet" in " ".join(run.stdout.split())
        assert server_state(host) == before
    finally:
        host.run_expect(
            [0],
            "docker network create --subnet %s -o com.docker.network.bridge.name=chainlit0 "
            "-o com.docker.network.bridge.enable_icc=false %s",
            subnet,
            APP_NETWORK,
        )


def test_a_removed_app_network_stays_admitted_until_the_deploys_last_play(
    host: Host, run_playbook: Callable, gateway: str, passwords: dict[str, str]
) -> None:
    """As a deploy changes the app networks (playbooks/deploy.yml; converge.yml
    plays it in the same order): the role keeps admitting the network the
    change removes (postgres_hba_keep_removed), so that the release still
    serving from it keeps logging in while the app hosts release; the last
    play (tasks_from hba_contract) stops admitting it; a rerun changes nothing."""
    app = host.check_output(
        "docker network inspect %s -f '{{(index .IPAM.Config 0).Subnet}}'", APP_NETWORK
    ).strip()
    url = database_url("chainlit", passwords["chainlit"], gateway, "chainlit")
    hba = "cat /etc/postgresql/*/main/pg_hba.conf"
    try:
        widened = run_playbook("converge.yml", {"postgres_app_networks": [app, DENIED_SUBNET]})
        assert widened.returncode == 0, widened.stdout
        assert login_from_container(host, DENIED_NETWORK, url).rc == 0
        # The deploy's PostgreSQL play, before the app hosts release.
        kept = run_playbook(
            "converge.yml", {"postgres_hba_keep_removed": True, "postgres_test_contract": False}
        )
        assert kept.returncode == 0, kept.stdout
        login = login_from_container(host, DENIED_NETWORK, url)
        assert login.rc == 0, login.stderr
        assert f"removes them): {DENIED_SUBNET}." in host.check_output(hba)
        # Then its last play.
        contracted = run_playbook("converge.yml", {"postgres_hba_keep_removed": True})
        assert contracted.returncode == 0, contracted.stdout
        login = login_from_container(host, DENIED_NETWORK, url)
        assert login.rc != 0
        assert "no pg_hba.conf entry" in login.stderr
        assert DENIED_SUBNET not in host.check_output(hba)
        assert login_from_container(host, APP_NETWORK, url).rc == 0
        again = run_playbook("converge.yml", {"postgres_hba_keep_removed": True})
        assert recap(again.stdout)["changed"] == 0, again.stdout
    finally:
        run_playbook("converge.yml")


def test_without_docker0_the_role_stops_before_any_change(run_playbook: Callable) -> None:
    run = run_playbook("converge.yml", {"postgres_docker_bridge_gateway": ""})
    assert run.returncode != 0
    assert recap(run.stdout)["failed"] == 1
    assert recap(run.stdout)["changed"] == 0
    assert "no docker0 interface" in run.stdout
    assert "set postgres_docker_bridge_gateway" in run.stdout


@pytest.mark.parametrize(
    ("override", "complaint"),
    [
        ({"postgres_work_mem": "lots"}, "invalid value for parameter"),
        ({"postgres_app_networks": ["1:2:3:4:5:6:7:8:9/64"]}, "refuses the new pg_hba.conf"),
    ],
    ids=["settings", "pg_hba"],
)
def test_a_configuration_the_server_refuses_is_not_applied(
    host: Host, run_playbook: Callable, override: dict[str, object], complaint: str
) -> None:
    before = server_state(host)
    run = run_playbook("converge.yml", override)
    assert run.returncode != 0
    assert complaint in run.stdout
    assert server_state(host) == before


def test_a_setting_that_allows_it_is_applied_by_a_reload_only(
    host: Host, run_playbook: Callable
) -> None:
    started = server_state(host)[0]
    changed = run_playbook("converge.yml", {"postgres_work_mem": "8MB"})
    assert changed.returncode == 0, changed.stdout
    assert superuser_query(host, "SHOW work_mem") == [["8MB"]]
    restored = run_playbook("converge.yml")
    assert restored.returncode == 0, restored.stdout
    # The settings file, then the reload.
    assert recap(changed.stdout)["changed"] == recap(restored.stdout)["changed"] == 2
    assert superuser_query(host, "SHOW work_mem") == [["4MB"]]
    assert server_state(host)[0] == started


def tls_login_from_container(host: Host, url: str) -> CommandResult:
    """A login from a container on the app's network; prints whether it uses TLS."""
    query = "SELECT ssl, version FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    return host.run(
        "docker run --rm --network %s %s psql -X -w %s -tAc %s",
        APP_NETWORK,
        CLIENT_IMAGE,
        url,
        query,
    )


def test_with_ssl_the_app_networks_log_in_over_tls_only(
    host: Host,
    gateway: str,
    passwords: dict[str, str],
    run_playbook: Callable,
    make_pair: Callable,
) -> None:
    """postgres_ssl without a certificate makes a self-signed one once; a
    container on the app network then logs in over TLS and never without;
    loopback still may; a given pair replaces it, one that does not fit is
    refused before any change; false puts plain logins back."""
    url = database_url("chainlit", passwords["chainlit"], gateway, "chainlit")
    cert_file = "/etc/postgresql/*/main/chainlit-deploy-server"
    on = run_playbook("converge.yml", {"postgres_ssl": True})
    assert on.returncode == 0, on.stdout
    try:
        plain = tls_login_from_container(host, url + "&sslmode=disable")
        assert plain.rc != 0
        assert "no encryption" in plain.stderr, plain.stderr
        tls = tls_login_from_container(host, url + "&sslmode=require")
        assert tls.rc == 0, tls.stderr
        assert re.fullmatch(r"t\|TLSv1\.[23]", tls.stdout.strip()), tls.stdout
        loopback = login_over_tcp(
            host, "127.0.0.1", "chainlit", "dbname=chainlit sslmode=disable", passwords["chainlit"]
        )
        assert loopback.rc == 0, loopback.stderr
        key = host.check_output(f"stat -c '%a %U' {cert_file}.key")
        assert key == "600 postgres"
        made = host.check_output(f"sha256sum {cert_file}.crt")
        again = run_playbook("converge.yml", {"postgres_ssl": True})
        assert again.returncode == 0, again.stdout
        assert recap(again.stdout)["changed"] == 0, again.stdout
        assert host.check_output(f"sha256sum {cert_file}.crt") == made

        cert, key_pem = make_pair("db.lab.test")
        _, other_key = make_pair("db.lab.test")
        before = server_state(host)
        refused = run_playbook(
            "converge.yml",
            {
                "postgres_ssl": True,
                "postgres_ssl_certificate": cert,
                "postgres_ssl_private_key": other_key,
            },
        )
        assert refused.returncode != 0
        said = " ".join(refused.stdout.split())
        assert "postgres_ssl_private_key is not the key of postgres_ssl_certificate" in said
        assert other_key.splitlines()[1] not in refused.stdout
        assert recap(refused.stdout)["changed"] == 0
        assert server_state(host) == before

        given = run_playbook(
            "converge.yml",
            {
                "postgres_ssl": True,
                "postgres_ssl_certificate": cert,
                "postgres_ssl_private_key": key_pem,
            },
        )
        assert given.returncode == 0, given.stdout
        assert key_pem.splitlines()[1] not in given.stdout
        assert host.check_output(f"cat {cert_file}.crt").strip() == cert.strip()
        tls = tls_login_from_container(host, url + "&sslmode=require")
        assert tls.rc == 0 and tls.stdout.startswith("t|"), tls.stderr
    finally:
        off = run_playbook("converge.yml")
    assert off.returncode == 0, off.stdout
    plain = login_from_container(host, APP_NETWORK, url + "&sslmode=disable")
    assert plain.rc == 0, plain.stderr


def test_no_password_appears_in_the_ansible_output(passwords: dict[str, str]) -> None:
    # Molecule's converge and idempotence runs and this module's runs, all -v.
    log = Path(os.environ["ANSIBLE_LOG_PATH"]).read_text()
    assert "Create the login roles with their passwords" in log
    assert "censored" in log
    for owner, password in passwords.items():
        for form in {password, urllib.parse.quote(password, safe=""), urllib.parse.quote(password)}:
            assert form not in log, (
                f"the password of {owner} is in {os.environ['ANSIBLE_LOG_PATH']}"
            )


def test_the_server_comes_back_after_the_instance_restarts(
    host: Host,
    gateway: str,
    version: str,
    passwords: dict[str, str],
    restart_instance: Callable[[], None],
) -> None:
    restart_instance()
    assert host.service(f"postgresql@{version}-main").is_running
    test_it_listens_on_loopback_and_the_bridge_gateway_only(host, gateway)
    url = database_url("chainlit", passwords["chainlit"], gateway, "chainlit")
    login = login_from_container(host, APP_NETWORK, url)
    assert login.rc == 0, login.stderr
    assert login.stdout.strip() == "chainlit"
