"""What a user relies on from the docker role, checked on the instance."""

from __future__ import annotations

import json

import pytest

ARCHIVE = "/opt/harness-images/python-base.tar"
ARCHIVE_IMAGE = "chainlit-deploy/python-base:bookworm"
EXPECTED_DAEMON = {
    "log-driver": "json-file",
    "log-opts": {"max-size": "5m", "max-file": "2"},
    "live-restore": True,
    "icc": False,
}


def engine_state(host) -> tuple[str, str]:
    """The daemon's PID and start time: both change on any restart."""
    show = host.check_output("systemctl show docker -p MainPID -p ActiveEnterTimestampMonotonic")
    props = dict(line.split("=", 1) for line in show.splitlines())
    return props["MainPID"], props["ActiveEnterTimestampMonotonic"]


def test_engine_runs_and_starts_at_boot(host):
    docker = host.service("docker")
    assert docker.is_running
    assert docker.is_enabled
    version = json.loads(host.check_output("docker version --format '{{json .Server}}'"))
    assert version["Version"]


def bridge_address(host) -> str:
    return host.check_output(
        "ip -4 -o address show dev docker0 | sed -E 's#.* inet ([0-9.]+)/.*#\\1#'"
    )


def test_daemon_config_is_what_was_asked(host):
    on_disk = json.loads(host.file("/etc/docker/daemon.json").content_string)
    # With live-restore the role names the bridge's address for host-gateway.
    assert on_disk == {**EXPECTED_DAEMON, "host-gateway-ip": bridge_address(host)}
    info = json.loads(host.check_output("docker info --format '{{json .}}'"))
    assert info["LoggingDriver"] == "json-file"
    assert info["LiveRestoreEnabled"] is True


def test_image_from_archive_runs_a_container(host):
    host.run_expect([0], f"docker load -i {ARCHIVE}")
    out = host.run(
        f"docker run --rm {ARCHIVE_IMAGE} python3 -c 'print(\"hello from the inner engine\")'"
    )
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "hello from the inner engine"


# From a container (or the host, with --network host), connect to an address.
CONNECT = (
    "python3 -c 'import socket, sys; socket.create_connection((sys.argv[1], 8080), 3); "
    'print("open")\' '
)


def test_containers_on_the_default_bridge_cannot_reach_one_another(host):
    """icc: false. The host still reaches the container (nginx reaches the
    app's through its published port)."""
    host.run_expect([0], f"docker image inspect {ARCHIVE_IMAGE} || docker load -i {ARCHIVE}")
    host.run("docker rm -f icc-server")
    host.run_expect(
        [0], f"docker run -d --name icc-server {ARCHIVE_IMAGE} python3 -m http.server 8080"
    )
    try:
        address = host.check_output(
            "docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "
            "icc-server"
        )
        from_host = f"docker run --rm --network host {ARCHIVE_IMAGE} {CONNECT} {address}"
        host.run_expect(
            [0], f"for i in $(seq 40); do {from_host} && exit 0; sleep 0.5; done; exit 1"
        )
        other = host.run(f"docker run --rm {ARCHIVE_IMAGE} {CONNECT} {address}")
        assert other.rc != 0 and "open" not in other.stdout, other
    finally:
        host.run("docker rm -f icc-server")


def test_the_apps_network_is_a_bridge_of_its_own_without_icc(host):
    """docker_app_network: the network chainlit on the host's bridge chainlit0,
    whose containers cannot reach one another; the host reaches them."""
    options = json.loads(
        host.check_output("docker network inspect chainlit -f '{{json .Options}}'")
    )
    assert options["com.docker.network.bridge.name"] == "chainlit0"
    assert options["com.docker.network.bridge.enable_icc"] == "false"
    assert host.interface("chainlit0").exists
    host.run_expect([0], f"docker image inspect {ARCHIVE_IMAGE} || docker load -i {ARCHIVE}")
    host.run("docker rm -f icc-app")
    host.run_expect(
        [0],
        f"docker run -d --name icc-app --network chainlit {ARCHIVE_IMAGE} "
        "python3 -m http.server 8080",
    )
    try:
        address = host.check_output(
            "docker inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' icc-app"
        )
        from_host = f"docker run --rm --network host {ARCHIVE_IMAGE} {CONNECT} {address}"
        host.run_expect(
            [0], f"for i in $(seq 40); do {from_host} && exit 0; sleep 0.5; done; exit 1"
        )
        for network in ("chainlit", "bridge"):
            other = host.run(
                f"docker run --rm --network {network} {ARCHIVE_IMAGE} {CONNECT} {address}"
            )
            assert other.rc != 0 and "open" not in other.stdout, (network, other)
    finally:
        host.run("docker rm -f icc-app")


def test_containers_get_the_configured_log_rotation(host):
    host.run_expect([0], f"docker image inspect {ARCHIVE_IMAGE} || docker load -i {ARCHIVE}")
    cid = host.check_output(f"docker run -d {ARCHIVE_IMAGE} sleep 30")
    try:
        log_config = json.loads(
            host.check_output(f"docker inspect --format '{{{{json .HostConfig.LogConfig}}}}' {cid}")
        )
    finally:
        host.run(f"docker rm -f {cid}")
    assert log_config == {"Type": "json-file", "Config": {"max-size": "5m", "max-file": "2"}}


def test_docker_users_can_use_the_engine(host):
    assert "docker" in host.user("deployer").groups
    assert host.run("sudo -u deployer docker info --format '{{.ServerVersion}}'").rc == 0


def test_community_docker_modules_have_requests(host):
    assert host.run("python3 -c 'import requests'").rc == 0


def test_rerun_and_check_mode_change_nothing(run_playbook, changed_count):
    rerun = run_playbook("converge.yml")
    assert rerun.returncode == 0, rerun.stdout
    assert changed_count(rerun) == 0
    check = run_playbook("converge.yml", None, "--check", "--diff")
    assert check.returncode == 0, check.stdout
    assert changed_count(check) == 0


def assert_refused(host, run_playbook, change: dict, *messages: str) -> None:
    """Converging with `change` merged into the daemon options fails with every
    message, and neither daemon.json nor the running engine changes."""
    before = engine_state(host), host.file("/etc/docker/daemon.json").content_string
    result = run_playbook("converge.yml", {"docker_daemon_options": {**EXPECTED_DAEMON, **change}})
    assert result.returncode != 0
    for message in messages:
        assert message in result.stdout
    assert (engine_state(host), host.file("/etc/docker/daemon.json").content_string) == before


def test_bad_log_level_is_refused_and_engine_untouched(host, run_playbook):
    assert_refused(
        host,
        run_playbook,
        {"log-level": "chatty"},
        "docker_daemon_options['log-level'] is 'chatty'",
        "set it to one of debug, info, warn, error, fatal",
    )


def test_numeric_log_opt_is_refused_with_the_fix(host, run_playbook):
    assert_refused(
        host,
        run_playbook,
        {"log-opts": {"max-size": "5m", "max-file": 2}},
        'quote numbers (for example max-file: "3")',
    )


def test_unknown_option_is_refused_by_the_engine_and_engine_untouched(host, run_playbook):
    version = host.check_output("dockerd --version")
    major = int(version.split("version ")[1].split(".")[0])
    if major < 23:
        pytest.skip(
            f"{version}: dockerd --validate exists from 23.0; older engines get a JSON check"
        )
    assert_refused(
        host, run_playbook, {"no-such-option": True}, "failed to validate", "no-such-option"
    )


def test_a_bridge_name_linux_would_refuse_is_refused_before_any_change(host, run_playbook):
    before = engine_state(host), host.check_output("docker network ls -q | sort")
    result = run_playbook("converge.yml", {"docker_app_network_bridge": "chainlit-bridge0"})
    assert result.returncode != 0
    assert "docker_app_network_bridge ('chainlit-bridge0') an interface name of 1 to 15" in (
        " ".join(result.stdout.split())
    )
    assert (engine_state(host), host.check_output("docker network ls -q | sort")) == before


GATEWAY_OF = (
    f"docker run --rm --add-host gw:host-gateway {ARCHIVE_IMAGE} "
    "python3 -c 'import socket; print(socket.gethostbyname(\"gw\"))'"
)


def test_host_gateway_survives_an_engine_restart_with_running_containers(host):
    """With live-restore, an engine restart while containers run left
    host-gateway unknown (moby/moby#42753, #53089; seen here as <nil> for
    host.docker.internal in every container created afterwards, so a new
    release could not reach PostgreSQL). The role names the address in
    daemon.json: it must survive the restart."""
    host.run_expect([0], f"docker image inspect {ARCHIVE_IMAGE} || docker load -i {ARCHIVE}")
    host.run_expect([0], f"docker run -d --name sleeper {ARCHIVE_IMAGE} sleep 600")
    try:
        host.run_expect([0], "systemctl restart docker")
        assert host.check_output("docker inspect -f '{{.State.Running}}' sleeper") == "true"
        gateway = host.run(GATEWAY_OF)
        assert gateway.rc == 0, gateway.stderr
        assert gateway.stdout.strip() == bridge_address(host)
    finally:
        host.run("docker rm -f sleeper")


def test_engine_comes_back_after_instance_restart(host, restart_instance):
    host.run_expect([0], f"docker image inspect {ARCHIVE_IMAGE} || docker load -i {ARCHIVE}")
    restart_instance()
    assert host.service("docker").is_running
    out = host.run(f"docker run --rm {ARCHIVE_IMAGE} python3 -c 'print(42)'")
    assert out.rc == 0, out.stderr
    assert out.stdout.strip() == "42"
