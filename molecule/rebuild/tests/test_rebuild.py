"""After the first deploy: forced rebuilds (good and bad), rollback, backup
and restore, and a reboot, each checked from outside against the data the
users wrote. The tests run in file order; each leaves the app serving."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from urllib.parse import quote

import pytest

APP = "chainlit"
PROJECT = Path(__file__).resolve().parents[3]
PROBER = PROJECT / "bench" / "health_prober.py"
SEEDS = 3


def sql(host, query: str) -> str:
    return host.check_output("sudo -u postgres psql -d chainlit -XtAc %s", query).strip()


def data(host) -> dict[str, str]:
    """Every user, thread and step, by id, with the columns a user sees."""
    return {
        "users": sql(host, "SELECT string_agg(id || identifier, ',' ORDER BY id) FROM \"User\""),
        "threads": sql(
            host,
            "SELECT string_agg(id || coalesce(name, ''), ',' ORDER BY id) FROM \"Thread\"",
        ),
        "steps": sql(
            host,
            "SELECT string_agg(id || coalesce(output, ''), ',' ORDER BY id) FROM \"Step\"",
        ),
    }


def container(host, name: str = APP) -> dict:
    result = host.run(f"docker container inspect {name}")
    return json.loads(result.stdout)[0] if result.rc == 0 else {}


NGINX_PROBE = r"""
import sys, urllib.error, urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    response = opener.open("http://127.0.0.1:8502" + sys.argv[1], timeout=10)
except urllib.error.HTTPError as error:
    response = error
except OSError:
    print("0 -")
    raise SystemExit
print(response.status, response.headers.get("X-Chainlit-Upstream") or "-")
"""


def through_nginx(host, path: str = "/health") -> tuple[int, str]:
    """Status and X-Chainlit-Upstream of one request through nginx."""
    status, upstream = host.check_output("python3 -c %s %s", NGINX_PROBE, path).split()
    return int(status), upstream


def serving(host) -> tuple[str, str]:
    """The serving container's image ID and the upstream nginx uses."""
    return container(host)["Image"], through_nginx(host)[1]


class Prober:
    """bench/health_prober.py inside the instance, against nginx."""

    def __init__(self, instance_name: str) -> None:
        self.instance = instance_name

    def _exec(self, *argv: str) -> str:
        return subprocess.run(
            ["docker", "exec", self.instance, *argv], check=True, capture_output=True, text=True
        ).stdout

    def __enter__(self) -> Prober:
        subprocess.run(
            ["docker", "cp", str(PROBER), f"{self.instance}:/root/health_prober.py"], check=True
        )
        self._exec("rm", "-f", "/root/prober.stop", "/root/prober.json")
        subprocess.run(
            [
                "docker",
                "exec",
                "-d",
                self.instance,
                "python3",
                "/root/health_prober.py",
                "--url",
                "http://127.0.0.1:8502/health",
                "--interval",
                "0.1",
                "--stop-file",
                "/root/prober.stop",
                "--out",
                "/root/prober.json",
            ],
            check=True,
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._exec("touch", "/root/prober.stop")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["docker", "exec", self.instance, "cat", "/root/prober.json"],
                capture_output=True,
                text=True,
                check=False,
            ).stdout
            if out.strip():
                self.result = json.loads(out)
                return
            time.sleep(0.5)
        pytest.fail("the prober did not write its result")


# A new database connection from the serving container every half second,
# with the app's own DATABASE_URL, as Chainlit's asyncpg pool opens one:
# "ok <container>" or "refused <why>"; nothing while no container is named
# chainlit (the instant of the switch).
DB_LOOP = """
rm -f /root/dbloop.out /root/dbloop.stop /root/dbloop.done
while [ ! -e /root/dbloop.stop ]; do
  docker exec chainlit python -c '
import asyncio, os
import asyncpg
async def main():
    try:
        connection = await asyncpg.connect(os.environ["DATABASE_URL"], timeout=10)
    except Exception as error:
        print("refused", type(error).__name__, error)
        return
    await connection.close()
    print("ok", os.uname().nodename)
asyncio.run(main())' >> /root/dbloop.out 2>/dev/null
  sleep 0.5
done
touch /root/dbloop.done
"""


class ConnectionLoop:
    """DB_LOOP inside the instance while a playbook runs; .lines its answers."""

    def __init__(self, instance_name: str) -> None:
        self.instance = instance_name

    def __enter__(self) -> ConnectionLoop:
        subprocess.run(["docker", "exec", "-d", self.instance, "sh", "-c", DB_LOOP], check=True)
        return self

    def __exit__(self, *exc: object) -> None:
        subprocess.run(["docker", "exec", self.instance, "touch", "/root/dbloop.stop"], check=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = subprocess.run(
                ["docker", "exec", self.instance, "test", "-e", "/root/dbloop.done"], check=False
            )
            if done.returncode == 0:
                break
            time.sleep(0.5)
        self.lines = subprocess.run(
            ["docker", "exec", self.instance, "cat", "/root/dbloop.out"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()


@pytest.fixture
def app_copy(tmp_path: Path) -> Path:
    """A copy of the reference app to break."""
    src = tmp_path / "app"
    shutil.copytree(PROJECT / "app", src, ignore=shutil.ignore_patterns(".files", "__pycache__"))
    return src


def test_seed_chats_through_the_app(host, run_playbook):
    result = run_playbook("seed.yml", {"seed_count": SEEDS})
    assert result.returncode == 0, result.stdout
    threads = sql(host, """SELECT count(*) FROM "Thread" WHERE name LIKE 'rebuild-seed %'""")
    assert int(threads) == SEEDS
    steps = sql(
        host,
        """SELECT count(*) FROM "Step" s JOIN "Thread" t ON s."threadId" = t.id
           WHERE t.name LIKE 'rebuild-seed %'""",
    )
    assert int(steps) >= 2 * SEEDS  # at least a message and a reply each


# Containers on the instance's networks reach the package index only through
# the instance's FORWARD chain: rejecting HTTP(S) there cuts the build off.
BLOCK_INDEX = "iptables {} FORWARD {} -p tcp -m multiport --dports 80,443 -j REJECT"
REACH_PYPI = (
    "docker run --rm --entrypoint python3 chainlit-deploy/python-base:bookworm -c "
    "'import urllib.request as u; u.urlopen(\"https://pypi.org/simple/pip/\", timeout=10)'"
)


def test_rebuild_without_the_package_index_during_a_probe_loop_fails_no_request(
    host, run_playbook, instance_name
):
    """A forced rebuild from the wheelhouse with the package index cut off,
    while a prober asks nginx every 100 ms."""
    before = data(host)
    image_before, upstream_before = serving(host)
    host.run_expect([0], BLOCK_INDEX.format("-I", "1"))
    try:
        # The block is real: nothing in a container reaches PyPI.
        assert host.run(REACH_PYPI).rc != 0
        with Prober(instance_name) as prober:
            result = run_playbook("rebuild.yml")
    finally:
        host.run_expect([0], BLOCK_INDEX.format("-D", ""))
    assert result.returncode == 0, result.stdout
    assert "Same users, threads and steps before and after" in result.stdout
    # The prober ran for the whole rebuild and no request failed.
    assert prober.result["probes"] > 100, prober.result
    assert prober.result["failed"] == 0, prober.result
    # A new image serves, from the other slot, and the old one is kept.
    image_after, upstream_after = serving(host)
    assert image_after != image_before
    assert upstream_after != upstream_before
    previous = container(host, f"{APP}-previous")
    assert previous["Image"] == image_before
    assert not previous["State"]["Running"]
    assert container(host)["State"]["Health"]["Status"] == "healthy"
    assert host.run(f"docker image inspect {APP}-app:previous").rc == 0
    # The backup was taken first.
    assert host.run("ls /var/backups/chainlit-deploy/chainlit-*.dump").rc == 0
    assert data(host) == before


def test_rollback_returns_to_the_previous_image(host, run_playbook):
    before = data(host)
    previous_image = container(host, f"{APP}-previous")["Image"]
    current_image = container(host)["Image"]
    result = run_playbook("rollback.yml")
    assert result.returncode == 0, result.stdout
    assert container(host)["Image"] == previous_image
    assert container(host, f"{APP}-previous")["Image"] == current_image
    assert through_nginx(host)[0] == 200
    assert data(host) == before


def test_a_deploy_after_a_switch_interrupted_before_the_rename_fails_no_request(
    host, run_playbook, instance_name
):
    """A run interrupted right after nginx switched to <name>-next, before the
    renames: the new release serves as <name>-next, the replaced one still
    runs as <name> on the other slot. The next deploy finishes that switch:
    removing <name>-next would fail every request (seen before as 8 failed
    requests over 0.8 s)."""
    before = data(host)
    live = container(host)
    image = live["Image"]
    port = live["HostConfig"]["PortBindings"]["8000/tcp"][0]["HostPort"]
    other = "8602" if port == "8601" else "8601"
    host.run_expect([0], f"docker rename {APP} {APP}-next")
    host.run_expect(
        [0],
        f"docker run -d --name {APP} --env-file /opt/chainlit/.env --network chainlit "
        f"--add-host host.docker.internal:host-gateway -p 127.0.0.1:{other}:8000 {image}",
    )
    assert through_nginx(host)[0] == 200
    with Prober(instance_name) as prober:
        result = run_playbook("deploy.yml")
    assert result.returncode == 0, result.stdout
    assert prober.result["probes"] > 20, prober.result
    assert prober.result["failed"] == 0, prober.result
    assert not container(host, f"{APP}-next")
    assert container(host)["State"]["Running"]
    assert through_nginx(host)[0] == 200
    assert data(host) == before


def test_a_deploy_moves_an_app_on_the_default_bridge_onto_its_network_failing_no_request(
    host, run_playbook, instance_name
):
    """The layout before the app had a network of its own: its container on
    Docker's default bridge, pg_hba.conf admitting docker0's subnet. A deploy
    with the defaults releases it on its network, blue/green, and admits that
    network alone: no request fails, every chat is kept, verify passes. The
    release still serving on the default bridge opens new database
    connections until its successor serves (PostgreSQL keeps admitting
    docker0's subnet until the deploy's last play)."""
    before = data(host)
    docker0 = host.check_output(
        "docker network inspect bridge -f '{{(index .IPAM.Config 0).Subnet}}'"
    ).strip()
    old = run_playbook(
        "deploy.yml", {"chainlit_app_docker_network": "bridge", "postgres_app_networks": [docker0]}
    )
    assert old.returncode == 0, old.stdout
    assert list(container(host)["NetworkSettings"]["Networks"]) == ["bridge"]
    with Prober(instance_name) as prober, ConnectionLoop(instance_name) as connections:
        result = run_playbook("deploy.yml")
    assert result.returncode == 0, result.stdout
    assert "10 of 10 checks passed" in " ".join(result.stdout.split())
    assert prober.result["probes"] > 20, prober.result
    assert prober.result["failed"] == 0, prober.result
    refused = [line for line in connections.lines if not line.startswith("ok ")]
    assert refused == [], refused[:5]
    # From the old release, then from the new one: the loop saw the switch.
    containers = [line.split()[1] for line in connections.lines]
    assert len(containers) > 10 and len(set(containers)) >= 2, connections.lines
    assert list(container(host)["NetworkSettings"]["Networks"]) == ["chainlit"]
    app_subnet = host.check_output(
        "docker network inspect chainlit -f '{{(index .IPAM.Config 0).Subnet}}'"
    ).strip()
    rules = host.check_output("cat /etc/postgresql/*/main/pg_hba.conf")
    assert app_subnet in rules
    assert docker0 not in rules
    assert data(host) == before


def test_a_build_that_fails_leaves_the_old_app_serving(host, run_playbook, app_copy):
    with (app_copy / "requirements.txt").open("a") as requirements:
        requirements.write("chainlit-deploy-no-such-package==0.0.1\n")
    before = data(host)
    serving_before = container(host)
    result = run_playbook(
        "rebuild.yml", {"chainlit_app_src": str(app_copy), "chainlit_app_rebuild": False}
    )
    assert result.returncode != 0
    assert "chainlit-deploy-no-such-package" in result.stdout
    after = container(host)
    assert after["Id"] == serving_before["Id"]
    assert after["State"]["StartedAt"] == serving_before["State"]["StartedAt"]
    assert container(host, f"{APP}-next") == {}
    assert through_nginx(host)[0] == 200
    assert data(host) == before


def test_a_new_release_that_never_gets_healthy_is_dropped_and_the_old_one_serves(
    host, run_playbook, app_copy, instance_name
):
    app_py = app_copy / "app.py"
    # Imports fine in the image check (no .env there), hangs when it runs for real.
    with app_py.open("a") as source:
        source.write(
            "\n\nimport os as _os, time as _time\n"
            "if _os.environ.get('CHAINLIT_AUTH_SECRET'):\n    _time.sleep(10**6)\n"
        )
    before = data(host)
    serving_before = container(host)
    with Prober(instance_name) as prober:
        result = run_playbook(
            "rebuild.yml",
            {
                "chainlit_app_src": str(app_copy),
                "chainlit_app_rebuild": False,
                "chainlit_app_healthy_timeout": 30,
            },
        )
    assert result.returncode != 0
    assert "did not become healthy" in result.stdout
    assert "the previous release still serves, untouched" in result.stdout
    assert prober.result["failed"] == 0, prober.result
    assert container(host)["Id"] == serving_before["Id"]
    assert container(host, f"{APP}-next") == {}
    assert through_nginx(host)[0] == 200
    assert data(host) == before


def test_a_release_that_fails_verify_is_rolled_back_automatically(host, run_playbook, app_copy):
    with (app_copy / "app.py").open("a") as app_py:
        app_py.write(
            "\n\n@cl.password_auth_callback\n"
            "def refuse_everyone(username: str, password: str):\n"
            "    return None\n"
        )
    before = data(host)
    image_before = container(host)["Image"]
    cache_before = build_cache(host)
    result = run_playbook(
        "rebuild.yml", {"chainlit_app_src": str(app_copy), "chainlit_app_rebuild": False}
    )
    assert result.returncode != 0
    assert "was rolled back to the previous image, which passes verify" in result.stdout
    # Only the app's code changed: the new image (asserted below) was built on
    # the cached build stage (pip did not run), so the cache is the same image.
    assert cache_before and build_cache(host) == cache_before
    assert container(host)["Image"] == image_before
    assert container(host)["State"]["Health"]["Status"] == "healthy"
    # The refused release is kept, stopped, for inspection.
    assert container(host, f"{APP}-previous")["Image"] != image_before
    assert data(host) == before
    assert run_playbook("verify.yml").returncode == 0


def build_cache(host) -> str:
    """ID of the app's build cache (the last build stage), "" when none."""
    found = host.run(f"docker image inspect --format '{{{{.Id}}}}' {APP}-app-build:cache")
    return found.stdout.strip() if found.rc == 0 else ""


def app_images(host) -> list[str]:
    listing = host.check_output(f"docker images {APP}-app --format '{{{{.Tag}}}} {{{{.ID}}}}'")
    return listing.split("\n")


def test_five_rebuilds_later_the_host_keeps_only_the_serving_and_previous_images(
    host, run_playbook
):
    """Four rebuilds above (one without the index, one refused build, one
    never healthy, one rolled back) and one more that succeeds. The README
    promises what stays: the serving and previous images, the base image,
    one build cache, nothing untagged, no build directory. (Before the release pruned every
    unused image of the app, the images of the never-healthy and rolled-back
    releases were still tagged after it: four tags.)"""
    result = run_playbook("rebuild.yml")
    assert result.returncode == 0, result.stdout
    tags = {line.split()[0] for line in app_images(host) if line}
    ids = {line.split()[1] for line in app_images(host) if line}
    assert "previous" in tags and len(tags) == 2, tags
    assert len(ids) == 2, app_images(host)
    assert container(host)["Config"]["Image"] != ""
    assert host.check_output("docker images --filter dangling=true --quiet") == ""
    # One build cache: the last build stage, under one tag.
    cache = host.check_output(f"docker images {APP}-app-build --format '{{{{.Tag}}}}'").split()
    assert cache == ["cache"], cache
    assert host.check_output("docker ps --all --format '{{.Names}}' | sort").split() == [
        APP,
        f"{APP}-previous",
    ]
    assert host.check_output("ls -A /opt/chainlit/build") == ""
    print(host.check_output("docker system df"))


def test_backup_then_restore_into_an_empty_database_gives_back_every_chat(host, run_playbook):
    before = data(host)
    backup = run_playbook("backup.yml")
    assert backup.returncode == 0, backup.stdout
    # The controller's copy, as for a restore onto a fresh host.
    copies = sorted(
        (Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "backups").glob("chainlit-*.dump")
    )
    assert copies, "backup.yml fetched no copy to the controller"
    # An empty database: the app stopped, the database dropped and created again.
    host.run_expect([0], f"docker stop {APP}")
    sql_admin = "sudo -u postgres psql -XtAc %s"
    host.run_expect([0], sql_admin, "DROP DATABASE chainlit")
    host.run_expect([0], sql_admin, "CREATE DATABASE chainlit OWNER chainlit")
    assert sql(host, "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'") == "0"
    result = run_playbook("restore.yml", {"backup_restore_src": str(copies[-1])})
    assert result.returncode == 0, result.stdout
    assert container(host)["State"]["Health"]["Status"] == "healthy"
    assert data(host) == before
    assert "checks passed" in result.stdout  # verify ran against the restored data


def test_a_reboot_keeps_serving_the_same_chats(host, run_playbook, restart_instance):
    before = data(host)
    restart_instance()
    deadline = time.monotonic() + 180
    status = 0
    while time.monotonic() < deadline:
        status = through_nginx(host)[0]
        if status == 200:
            break
        time.sleep(2)
    assert status == 200
    assert data(host) == before
    result = run_playbook("verify.yml")
    assert result.returncode == 0, result.stdout


def test_troubleshoot_finds_nothing_after_all_that(host, run_playbook):
    result = run_playbook("troubleshoot.yml")
    assert result.returncode == 0, result.stdout
    assert "no problem found" in result.stdout


def secrets_in_use(host, instance_name: str) -> dict[str, str]:
    """Every secret value this deployment uses, and the forms it travels in."""
    credentials = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"]) / "credentials"
    db_password = (credentials / instance_name / "postgres-chainlit.password").read_text().strip()
    env = dict(
        line.split("=", 1)
        for line in host.file("/opt/chainlit/.env").content_string.splitlines()
        if "=" in line and not line.startswith("#")
    )
    found = {
        "database password": db_password,
        "database password, URL-encoded": quote(db_password, safe=""),
        "auth secret": (credentials / "chainlit-auth-secret").read_text().strip(),
        "user password": "correct horse battery staple",
        "DATABASE_URL": env["DATABASE_URL"],
        "CHAINLIT_AUTH_SECRET": env["CHAINLIT_AUTH_SECRET"],
    }
    for entry in env["CHAINLIT_USERS"].split(","):
        found[f"password hash of {entry.split(':', 1)[0]}"] = entry.split(":", 1)[1]
    return found


LOG_RECORD = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ p=(\d+) ", re.MULTILINE)


def split_inventory_dumps(log: str) -> tuple[str, str]:
    """The log without, then with only, the records of `ansible-inventory
    --list`, which testinfra runs (with the same ANSIBLE_LOG_PATH) to find the
    instance: it prints the inventory, test credentials included, by design.
    A record is a line with a timestamp and its continuation lines."""
    starts = list(LOG_RECORD.finditer(log))
    dumps = {
        m.group(1)
        for m in starts
        if log[m.end() : m.end() + 200].split("| ", 1)[-1].startswith("ansible-inventory ")
    }
    kept, dropped = [], []
    for match, following in zip(starts, [*starts[1:], None], strict=True):
        record = log[match.start() : following.start() if following else len(log)]
        (dropped if match.group(1) in dumps else kept).append(record)
    return "".join(kept), "".join(dropped)


def test_no_secret_reaches_the_output_at_vvv(host, instance_name):
    """deploy, seed, rebuild, rollback, backup, restore, verify and troubleshoot
    all ran at -vvv into one log: no secret value appears in it."""
    log, inventory_dumps = split_inventory_dumps(Path(os.environ["ANSIBLE_LOG_PATH"]).read_text())
    # What is left out is the inventory as testinfra reads it, no playbook's output.
    assert "PLAYBOOK: " not in inventory_dumps and "TASK [" not in inventory_dumps
    assert "rebuild.yml" in log and "restore.yml" in log and "troubleshoot.yml" in log
    assert "<127.0.0.1> EXEC" in log or "ESTABLISH" in log, "the log is not at -vvv"
    leaked = [name for name, value in secrets_in_use(host, instance_name).items() if value in log]
    assert leaked == [], f"found in {os.environ['ANSIBLE_LOG_PATH']}: {leaked}"
