"""What the chainlit_app role promises, checked on the instance from outside
the app: the way an operator would check that chats can be saved."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

APP = "chainlit"
PROJECT = Path(__file__).resolve().parents[3]
ENV_FILE = "/opt/chainlit/.env"
USER, PASSWORD = "alice", "correct horse battery staple"
TABLES = {"User", "Thread", "Step", "Element", "Feedback"}

# Runs on the instance: one HTTP request to the app, printed as JSON.
HTTP_PROBE = r"""
import json, sys, urllib.error, urllib.parse, urllib.request
method, url, form = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
data = urllib.parse.urlencode(form).encode() if form else None
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
try:
    response = opener.open(urllib.request.Request(url, data=data, method=method), timeout=20)
except urllib.error.HTTPError as error:
    response = error
cookies = response.headers.get_all("Set-Cookie") or []
body = response.read().decode(errors="replace")
print(json.dumps({"status": response.status, "cookies": cookies, "body": body}))
"""


NGINX_HEADER_PROBE = r"""
import urllib.request
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
response = opener.open("http://127.0.0.1:8502/health", timeout=20)
print(response.status, response.headers["X-Chainlit-Upstream"], end="")
"""


def http(host, method: str, path: str, form: dict[str, str] | None = None, port: int = 8502):
    out = host.check_output(
        "python3 -c %s %s %s %s",
        HTTP_PROBE,
        method,
        f"http://127.0.0.1:{port}{path}",
        json.dumps(form or {}),
    )
    return json.loads(out)


def sql(host, query: str) -> str:
    return host.check_output("sudo -u postgres psql -d chainlit -XtAc %s", query).strip()


def container(host, name: str = APP) -> dict:
    return json.loads(host.check_output(f"docker container inspect {name}"))[0]


def host_snapshot(host) -> str:
    """Everything a refused run must leave as it was."""
    files = host.check_output(
        "find /opt/chainlit -maxdepth 2 -printf '%p %s %T@\\n' | sort; sha256sum /opt/chainlit/.env"
    )
    return files + container(host)["Id"] + container(host)["State"]["StartedAt"]


def test_container_runs_and_is_healthy(host):
    state = container(host)["State"]
    assert state["Running"]
    assert state["Health"]["Status"] == "healthy"
    assert container(host)["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    # Debian 12's docker.io 20.10 (API 1.41) refuses a start interval: the
    # release keeps the 5 s one (molecule/default checks Docker 25 or later).
    api = host.check_output("docker version --format '{{.Server.APIVersion}}'")
    assert tuple(map(int, api.split("."))) < (1, 44), api
    assert container(host)["Config"]["Healthcheck"].get("StartInterval", 0) == 0


def test_the_container_is_hardened_by_default(host):
    """No capability left to regain, no privilege to gain, bounded memory and
    processes; the app runs and persists chats so (the other tests)."""
    config = container(host)["HostConfig"]
    assert config["CapDrop"] == ["ALL"]
    assert "no-new-privileges" in (config["SecurityOpt"] or [])
    assert config["Memory"] == 1024**3
    assert config["PidsLimit"] == 512
    status = host.check_output(f"docker exec {APP} cat /proc/1/status")
    assert re.search(r"^CapBnd:\s+0+$", status, re.MULTILINE), status
    assert re.search(r"^NoNewPrivs:\s+1$", status, re.MULTILINE), status


def test_another_container_on_the_host_cannot_reach_the_apps_container(host):
    """The app runs on its own network (role docker's docker_app_network,
    enable_icc false): it answers the host (and nginx), not a container on
    the default bridge, nor one beside it on its own network."""
    live = container(host)
    assert list(live["NetworkSettings"]["Networks"]) == ["chainlit"]
    address = live["NetworkSettings"]["Networks"]["chainlit"]["IPAddress"]
    connect = (
        "-c 'import socket, sys; socket.create_connection((sys.argv[1], 8000), 3); "
        f'print("open")\' {address}'
    )
    run = f"docker run --rm --entrypoint python3 {{}} {live['Image']} {connect}"
    assert host.run(run.format("--network host")).stdout.strip() == "open"
    for network in ("bridge", "chainlit"):
        other = host.run(run.format(f"--network {network}"))
        assert other.rc != 0 and "open" not in other.stdout, (network, other)


def test_postgresql_admits_the_apps_network_and_not_the_default_bridge(host):
    """pg_hba.conf admits the app's network alone: the same login, with the
    app's own URL, works from a container on it and is refused from docker0."""
    live = container(host)
    login = (
        "-c 'import asyncio, os, asyncpg; "
        'asyncio.run(asyncpg.connect(os.environ["DATABASE_URL"], timeout=10)); '
        'print("in")\''
    )
    run = (
        f"docker run --rm --env-file {ENV_FILE} --add-host host.docker.internal:host-gateway "
        f"--entrypoint python3 {{}} {live['Image']} {login}"
    )
    admitted = host.run(run.format("--network chainlit"))
    assert admitted.stdout.strip() == "in", admitted
    refused = host.run(run.format("--network bridge"))
    assert refused.rc != 0 and "no pg_hba.conf entry" in refused.stderr, refused


def test_the_root_filesystem_is_read_only_but_uploads_and_tmp_are_writable(host):
    """The reference image holds what Chainlit writes at startup, so auto runs
    it read-only, with tmpfs where the app writes."""
    config = container(host)["HostConfig"]
    assert config["ReadonlyRootfs"] is True
    assert set(config["Tmpfs"]) == {"/tmp", "/app/.files"}, config["Tmpfs"]
    denied = host.run(f"docker exec {APP} sh -c 'echo x > /app/app.py.new'")
    assert denied.rc != 0 and "Read-only file system" in denied.stderr, denied
    for path in ("/app/.files", "/tmp"):
        host.run_expect([0], f"docker exec {APP} sh -c 'echo x > {path}/probe && rm {path}/probe'")


def test_app_reads_database_url_and_not_the_wrong_variable(host):
    env = host.check_output(f"docker exec {APP} env")
    names = {line.split("=", 1)[0] for line in env.splitlines()}
    assert "DATABASE_URL" in names
    assert "CHAINLIT_DATABASE_URL" not in names
    url = next(line for line in env.splitlines() if line.startswith("DATABASE_URL="))
    assert url.startswith("DATABASE_URL=postgresql://chainlit:")


def test_image_has_asyncpg_and_the_pinned_chainlit(host):
    out = host.check_output(
        f"docker exec {APP} python -c "
        "'import asyncpg, importlib.metadata as m; print(m.version(\"chainlit\"))'"
    )
    assert out.strip() == "2.12.0"


def test_the_five_chainlit_tables_exist(host):
    tables = set(
        sql(host, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'").splitlines()
    )
    assert tables >= TABLES


def test_env_file_is_private_and_unquoted(host):
    env = host.file(ENV_FILE)
    assert env.mode == 0o600
    assert env.user == "root"
    content = env.content_string
    assert '"' not in content
    assert "'" not in content
    assert "CHAINLIT_AUTH_SECRET=" in content
    assert PASSWORD not in content  # only the hash reaches the host


def test_health_answers_on_the_published_port(host):
    response = http(host, "GET", "/health")
    assert response["status"] == 200


def test_nginx_fronts_the_app_which_is_published_on_a_loopback_slot_only(host):
    assert host.service("nginx").is_running
    assert host.service("nginx").is_enabled
    bindings = container(host)["HostConfig"]["PortBindings"]["8000/tcp"]
    assert [(b["HostIp"], b["HostPort"]) for b in bindings] in (
        [("127.0.0.1", "8601")],
        [("127.0.0.1", "8602")],
    )
    site = host.file("/etc/nginx/conf.d/chainlit-deploy-chainlit.conf").content_string
    assert f"server 127.0.0.1:{bindings[0]['HostPort']};" in site
    assert "listen 127.0.0.1:8502;" in site
    headers = host.check_output("python3 -c %s", NGINX_HEADER_PROBE)
    assert headers == f"200 127.0.0.1:{bindings[0]['HostPort']}"
    # The distribution's default site is off: nothing answers on port 80.
    assert not host.socket("tcp://0.0.0.0:80").is_listening


def test_login_works_and_creates_the_user_row(host):
    response = http(host, "POST", "/login", {"username": USER, "password": PASSWORD})
    assert response["status"] == 200, response["body"]
    assert any(cookie.startswith("access_token") for cookie in response["cookies"])
    assert sql(host, f"""SELECT count(*) FROM "User" WHERE identifier = '{USER}'""") == "1"


def test_wrong_password_is_refused(host):
    response = http(host, "POST", "/login", {"username": USER, "password": "wrong"})
    assert response["status"] == 401


def test_rerun_and_check_mode_change_nothing_and_do_not_rebuild(host, run_playbook, changed_count):
    before = container(host)
    rerun = run_playbook("converge.yml")
    assert rerun.returncode == 0, rerun.stdout
    assert changed_count(rerun) == 0
    after = container(host)
    assert after["Image"] == before["Image"]
    assert after["Id"] == before["Id"]
    check = run_playbook("converge.yml", None, "--check", "--diff")
    assert check.returncode == 0, check.stdout
    assert changed_count(check) == 0


def test_check_mode_after_a_code_change_reports_the_build_and_changes_nothing(
    host, run_playbook, changed_count, tmp_path
):
    """What an operator runs first after changing the app (the README says
    so): it failed before, in the build's tasks (no wheelhouse archive, no
    build context in check mode). With the wheelhouse, as the lab builds."""
    app = tmp_path / "app"
    shutil.copytree(PROJECT / "app", app, ignore=shutil.ignore_patterns(".files", "__pycache__"))
    with (app / "app.py").open("a") as app_py:
        app_py.write("\n# changed by the check-mode test\n")
    before = host_snapshot(host)
    images = host.check_output("docker images --all --quiet --no-trunc | sort")
    extra = {
        "chainlit_app_src": str(app),
        "chainlit_app_wheelhouse": str(PROJECT / ".cache/wheelhouse"),
    }
    check = run_playbook("converge.yml", extra, "--check", "--diff")
    assert check.returncode == 0, check.stdout
    assert "Check mode: a real run builds chainlit-app:" in check.stdout
    assert changed_count(check) > 0
    assert host_snapshot(host) == before
    assert host.check_output("docker images --all --quiet --no-trunc | sort") == images


def test_an_env_change_releases_the_same_image_and_keeps_its_tag(host, run_playbook, changed_count):
    before = container(host)
    extra = {"chainlit_app_env": {"CHAINLIT_DEPLOY_TEST": "env-only-release"}}
    result = run_playbook("converge.yml", extra)
    assert result.returncode == 0, result.stdout
    after = container(host)
    assert after["Id"] != before["Id"]
    assert after["Image"] == before["Image"]
    assert "CHAINLIT_DEPLOY_TEST=env-only-release" in host.check_output(f"docker exec {APP} env")
    # The image keeps its source tag besides "previous": the next run builds nothing.
    tags = host.check_output("docker images chainlit-app --format '{{.Tag}}'").split()
    assert "previous" in tags
    assert [tag for tag in tags if tag != "previous"], tags
    rerun = run_playbook("converge.yml", extra)
    assert rerun.returncode == 0, rerun.stdout
    assert changed_count(rerun) == 0
    back = run_playbook("converge.yml")
    assert back.returncode == 0, back.stdout
    assert "CHAINLIT_DEPLOY_TEST" not in host.check_output(f"docker exec {APP} env")


REFUSALS = [
    (
        {"chainlit_app_env": {"CHAINLIT_DATABASE_URL": "postgresql://u:p@db/chainlit"}},
        "chainlit_app_env sets CHAINLIT_DATABASE_URL, which Chainlit never reads",
    ),
    (
        {"chainlit_app_database_url": "postgresql+asyncpg://chainlit:pw@db:5432/chainlit"},
        "chainlit_app_database_url: the database URL starts with postgresql+asyncpg:// (the "
        "SQLAlchemy form)",
    ),
    (
        {"chainlit_app_auth_secret": ""},
        "chainlit_app_auth_secret is empty",
    ),
    (
        {"chainlit_app_env": {"OPENAI_API_KEY": '"sk-quoted"'}},
        "chainlit_app_env['OPENAI_API_KEY'] contains a quote",
    ),
    (
        {"chainlit_app_memory_limit": "1 GB"},
        "chainlit_app_memory_limit is '1 GB'",
    ),
    (
        {"chainlit_app_writable_paths": ["app/.cache"]},
        'chainlit_app_writable_paths is ["app/.cache"]',
    ),
]


@pytest.mark.parametrize(("extra_vars", "message"), REFUSALS, ids=lambda v: str(v)[:40])
def test_bad_input_is_refused_and_the_host_is_untouched(host, run_playbook, extra_vars, message):
    before = host_snapshot(host)
    result = run_playbook("converge.yml", extra_vars)
    assert result.returncode != 0
    assert message in result.stdout
    assert host_snapshot(host) == before


def test_app_without_asyncpg_in_its_requirements_deploys_and_persists(host, run_playbook):
    result = run_playbook("plain_app.yml")
    assert result.returncode == 0, result.stdout
    # The app's own requirements lack asyncpg; its image has it. (The build
    # context, with the requirements the role wrote, is removed once built.)
    source = Path(__file__).parents[1] / "files/plain-app/requirements.txt"
    pins = [line for line in source.read_text().splitlines() if not line.startswith("#")]
    assert pins and not [pin for pin in pins if "asyncpg" in pin], pins
    host.run_expect([0], "docker exec plain python -c 'import asyncpg'")
    assert host.check_output("ls -A /opt/plain/build 2>/dev/null || true") == ""
    assert container(host, "plain")["State"]["Health"]["Status"] == "healthy"
    response = http(
        host, "POST", "/login", {"username": "bob", "password": "plain app password"}, 8503
    )
    assert response["status"] == 200, response["body"]
    assert sql(host, """SELECT count(*) FROM "User" WHERE identifier = 'bob'""") == "1"
    # The generic Dockerfile writes what Chainlit would write at startup (the
    # app brings no chainlit.md): it runs read-only too.
    assert container(host, "plain")["HostConfig"]["ReadonlyRootfs"] is True


def test_an_image_lacking_chainlits_files_runs_writable_with_a_warning_or_is_refused(
    host, run_playbook
):
    """An app root (CHAINLIT_APP_ROOT) where the image holds none of what
    Chainlit writes at startup. Required read-only: refused before any
    container starts, naming what is missing and the fix, the serving release
    untouched. auto: released writable, and the play says why."""
    before = container(host, "plain")
    elsewhere = {"chainlit_app_env": {"CHAINLIT_APP_ROOT": "/tmp"}}
    required = {**elsewhere, "chainlit_app_root_filesystem": "read-only"}
    refused = run_playbook("plain_app.yml", required)
    assert refused.returncode != 0
    text = " ".join(refused.stdout.split())
    assert "cannot run on a read-only root filesystem" in text, refused.stdout
    assert "app root /tmp: .chainlit/config.toml, chainlit.md, .chainlit/translations/" in text
    assert "set chainlit_app_root_filesystem to auto or writable" in text
    assert host.run("docker inspect plain-next").rc != 0
    after = container(host, "plain")
    assert after["Id"] == before["Id"]
    assert after["State"]["StartedAt"] == before["State"]["StartedAt"]

    writable = run_playbook("plain_app.yml", elsewhere)
    assert writable.returncode == 0, writable.stdout
    text = " ".join(writable.stdout.split())
    assert re.search(r"WARNING: plain on \S+ runs on a writable root filesystem", text), text
    assert "in /tmp: .chainlit/config.toml, chainlit.md" in text
    assert container(host, "plain")["HostConfig"]["ReadonlyRootfs"] is False

    back = run_playbook("plain_app.yml")
    assert back.returncode == 0, back.stdout
    assert "runs on a writable root filesystem" not in back.stdout
    assert container(host, "plain")["HostConfig"]["ReadonlyRootfs"] is True


# A change of the requirements builds a new image: molecule/default's upgrade
# test pins the third-party app to 2.0.603, then 2.12.0, and each
# release runs the Chainlit it pins (one more build of the plain app here cost
# 208 s on two busy cores and proved nothing more).


def test_verify_role_proves_chats_persist_and_cleans_up(host, run_playbook):
    threads_before = sql(host, 'SELECT count(*) FROM "Thread"')
    result = run_playbook("verify_app.yml")
    assert result.returncode == 0, result.stdout
    assert "10 of 10 checks passed" in result.stdout
    assert sql(host, 'SELECT count(*) FROM "Thread"') == threads_before


def test_troubleshoot_finds_no_problem_on_a_healthy_deployment(run_playbook, changed_count):
    result = run_playbook("troubleshoot_app.yml", None, "--check")
    assert result.returncode == 0, result.stdout
    assert "no problem found" in result.stdout
    assert changed_count(result) == 0


def test_troubleshoot_names_a_stopped_postgresql(host, run_playbook):
    host.run_expect([0], "systemctl stop postgresql")
    try:
        result = run_playbook("troubleshoot_app.yml")
    finally:
        host.run_expect([0], "systemctl start postgresql")
    assert result.returncode == 0, result.stdout
    assert "[postgresql_down]" in result.stdout
    assert "1 finding: postgresql_down" in result.stdout
