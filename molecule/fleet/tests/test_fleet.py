"""The fleet (issue #13), as README.md "Production use" says to run it: the
example inventory copied and edited, the secrets in a vault, every playbook
run with --vault-password-file over real SSH (a user with sudo, host keys
checked) against a database host, two app hosts and a load balancer.

The tests run in file order and build on each other: bad input refused on
the new servers; deploy in check mode; the first deploy; HTTPS through the
load balancer; the database refusing the load balancer; an app host cut off
from the database; a rolling rebuild, then a rolling rollback, under probes
and chats; a release that fails on the first app host stopping the roll.
`docker exec` only looks at the instances (or breaks them on purpose)."""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import uuid
from pathlib import Path

import pytest
import yaml

ROOT = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
EPHEMERAL = Path(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"])
DB, APP1, APP2, LB = (f"molecule-fleet-{n}" for n in ("db", "app1", "app2", "lb"))
ADDRESS = {DB: "10.203.0.10", APP1: "10.203.0.11", APP2: "10.203.0.12", LB: "10.203.0.13"}
PUBLIC_URL = f"https://{ADDRESS[LB]}"
ALICE = f"alice-pw-{uuid.uuid4().hex[:10]}"
SECRETS = {
    "vault_chainlit_db_password": f"db-{uuid.uuid4().hex}",
    "vault_chainlit_auth_secret": uuid.uuid4().hex + uuid.uuid4().hex,
    "vault_alice_chat_password": ALICE,
}


def on(instance: str, command: str, check: bool = True) -> str:
    """A shell command inside an instance, to look (or to break it on purpose)."""
    done = subprocess.run(
        ["docker", "exec", instance, "sh", "-c", command], capture_output=True, text=True
    )
    if check and done.returncode != 0:
        pytest.fail(f"{instance}: {command}: {done.stdout}{done.stderr}")
    return done.stdout.strip()


def sql(query: str) -> str:
    return on(DB, f"sudo -u postgres psql -d chainlit -XtAc '{query}'")


def data() -> dict[str, set[str]]:
    """Every user, thread and step by id: what a roll must keep."""
    return {
        table: set(sql(f'SELECT id FROM "{table}"').split()) for table in ("User", "Thread", "Step")
    }


def serving_image(instance: str) -> str:
    return on(instance, "docker inspect -f '{{.Image}}' chainlit")


def snapshot() -> dict[str, str]:
    """What a refused run must leave as it was on every host. Not the
    harness's image archives (/opt/harness-images, the checkout's
    .cache/images mounted read-only): another lane's first build writes the
    app's archive there, which changed the mount's time in the listing
    under a check-mode run that changed nothing."""
    return {
        name: on(
            name,
            "ls -la --ignore=harness-images /opt /etc/haproxy /etc/nginx/conf.d "
            "/var/lib/postgresql /etc/postgresql "
            "2>&1 | md5sum; dpkg-query -W -f '${Package} ${Version}\\n' | md5sum",
        )
        for name in ADDRESS
    }


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The operator's project, made as README.md "Production use" says."""
    project = tmp_path_factory.mktemp("operator")
    inventory = project / "inventory" / "production"
    shutil.copytree(ROOT / "inventory" / "production.example", inventory)
    shutil.copytree(ROOT / "app", project / "app", ignore=shutil.ignore_patterns(".files"))
    # Edit the example: the hosts' names and private addresses, the public URL.
    hosts = (inventory / "hosts.yml").read_text()
    for old, new in {
        "db1.example.com": DB,
        "chat1.example.com": APP1,
        "chat2.example.com": APP2,
        "lb1.example.com": LB,
        "10.0.0.10": ADDRESS[DB],
        "10.0.0.11": ADDRESS[APP1],
        "10.0.0.12": ADDRESS[APP2],
        "10.0.0.13": ADDRESS[LB],
    }.items():
        assert old in hosts, old
        hosts = hosts.replace(old, new)
    (inventory / "hosts.yml").write_text(hosts)
    main = inventory / "group_vars" / "all" / "main.yml"
    main.write_text(main.read_text().replace("https://chat.example.com", PUBLIC_URL))
    # The vault, encrypted with a password file.
    (project / "vault-password").write_text(f"vault-{uuid.uuid4().hex}\n")
    (project / "vault-password").chmod(0o600)
    vault = inventory / "group_vars" / "all" / "vault.yml"
    vault.write_text(yaml.safe_dump(SECRETS))
    done = ansible(project, "ansible-vault", "encrypt", str(vault))
    assert done.returncode == 0, done.stdout
    assert vault.read_text().startswith("$ANSIBLE_VAULT")
    # What only this lab needs: how the controller reaches the instances
    # (their private addresses, the key prepare.yml authorised, the host keys
    # it recorded), and images without a registry or the package index.
    (inventory / "group_vars" / "all" / "lab.yml").write_text(
        yaml.safe_dump(
            {
                "ansible_host": "{{ private_address }}",
                "ansible_ssh_private_key_file": str(EPHEMERAL / "id_fleet"),
                "ansible_ssh_common_args": f"-o UserKnownHostsFile={EPHEMERAL / 'known_hosts'}",
                "ansible_python_interpreter": "/usr/bin/python3",
                "chainlit_app_base_image": "chainlit-deploy/python-base:bookworm",
                "chainlit_app_base_image_archive": "/opt/harness-images/python-base.tar",
                "chainlit_app_ca_bundle": "/etc/ssl/certs/ca-certificates.crt",
                "chainlit_app_wheelhouse": str(ROOT / ".cache" / "wheelhouse"),
                "verify_expect_context": True,
            }
        )
    )
    # The harness's build of the reference app, where a fleet keeps its
    # images (the first deploy loads it instead of building: the rolling
    # rebuild below builds). Links: a rebuild renames a new file over them.
    images = inventory / ".images"
    images.mkdir()
    for archive in (ROOT / ".cache" / "images" / "app").glob("*.tar"):
        os.link(archive, images / archive.name)
    (project / "ansible.cfg").write_text(
        "[defaults]\ninterpreter_python = auto_silent\nhost_key_checking = true\n"
        "callbacks_enabled = ansible.posix.profile_tasks, chainlit_deploy.stack.preload\n"
        "[ssh_connection]\npipelining = true\n"
    )
    (project / "alice-password").write_text(ALICE)
    return project


def operator_env(project: Path) -> dict[str, str]:
    """The environment of a command of the operator's project: its
    ansible.cfg, this checkout as the collection, no Molecule settings (its
    config turns host key checking off)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANSIBLE_", "MOLECULE_"))}
    env.update(
        ANSIBLE_CONFIG=str(project / "ansible.cfg"),
        ANSIBLE_COLLECTIONS_PATH=str(ROOT / ".ansible" / "collections"),
        ANSIBLE_VAULT_PASSWORD_FILE=str(project / "vault-password"),
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_NOCOLOR="1",
    )
    return env


def ansible(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """A command of the operator's project."""
    return subprocess.run(
        args,
        cwd=project,
        env=operator_env(project),
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def playbook(project: Path, name: str, *args: str) -> subprocess.CompletedProcess[str]:
    return ansible(
        project,
        "ansible-playbook",
        "-i",
        "inventory/production",
        "--vault-password-file",
        "vault-password",
        f"chainlit_deploy.stack.{name}",
        *args,
    )


def recap_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    """The PLAY RECAP line of each host of a playbook run."""
    return [line for line in result.stdout.split("PLAY RECAP")[-1].splitlines() if " ok=" in line]


def lb_certificate(project: Path) -> Path:
    """The load balancer's certificate (the self-signed one it generated),
    to verify HTTPS against, as a browser given it would."""
    pem = on(LB, f"cat /etc/haproxy/chainlit-deploy/{ADDRESS[LB]}.pem")
    cert = pem[: pem.index("-----END CERTIFICATE-----") + len("-----END CERTIFICATE-----")]
    path = project / "lb.pem"
    path.write_text(cert[cert.index("-----BEGIN CERTIFICATE-----") :] + "\n")
    return path


def as_alice(project: Path) -> list[str]:
    """The bench scripts' options for chatting through the load balancer as
    alice, trusting its certificate."""
    return [
        "--url",
        PUBLIC_URL,
        "--cafile",
        str(lb_certificate(project)),
        "--user",
        "alice",
        "--password-file",
        str(project / "alice-password"),
    ]


def chats(project: Path, seconds: float) -> dict:
    """Chats through the load balancer for a few seconds (bench/chat_prober.py)."""
    done = subprocess.run(
        [
            "python3",
            str(ROOT / "bench" / "chat_prober.py"),
            *as_alice(project),
            "--duration",
            str(seconds),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def bench(project: Path, artifact: str, script: str, *args: str) -> subprocess.CompletedProcess:
    """A script of bench/ run in the operator's project with its environment
    and the vault password file; its output printed and kept in
    artifacts/<artifact>."""
    done = subprocess.run(
        [
            "python3",
            str(ROOT / "bench" / script),
            *args,
            "--",
            "--vault-password-file",
            "vault-password",
        ],
        cwd=project,
        env=operator_env(project),
        capture_output=True,
        text=True,
    )
    print(done.stdout)
    (ROOT / "artifacts").mkdir(exist_ok=True)
    (ROOT / "artifacts" / artifact).write_text(done.stdout + done.stderr)
    return done


def roll(project: Path, name: str) -> dict:
    """A rolling playbook while users chat through the load balancer
    (bench/fleet_roll), its output kept in artifacts/: no probe and no chat
    failed, app1 was put back before app2 began, no user, thread or step was
    lost. Returns the figures."""
    before = data()
    out = project / f"{name}.json"
    done = bench(
        project,
        f"fleet-{name}.txt",
        "fleet_roll",
        "-i",
        "inventory/production",
        *as_alice(project),
        "--playbook",
        name,
        "--out",
        str(out),
    )
    figures = json.loads(out.read_text())
    assert done.returncode == 0, figures["output"][-5000:]
    assert figures["health"]["failed"] == 0, figures["health"]
    assert figures["chats"]["failed"] == 0, figures["chats"]
    output = figures["output"]
    assert output.index(f"[{APP2}]") > output.index("Put this app host back"), "not rolled"
    after = data()
    for table, ids in before.items():
        assert ids <= after[table], f"{table} lost rows"
    return figures


def write_host_vars(project: Path, host: str, values: dict) -> Path:
    path = project / "inventory" / "production" / "host_vars" / f"{host}.yml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump(values))
    return path


@pytest.mark.parametrize(
    ("host", "values", "message"),
    [
        (
            APP2,
            {"chainlit_app_auth_secret": "another-secret-for-app2-only-" + "x" * 40},
            "chainlit_app_auth_secret differs across the app hosts",
        ),
        (
            DB,
            {"postgres_app_networks": [f"{ADDRESS[APP1]}/32"]},
            f"app host {APP2} reaches the database host {DB} from {ADDRESS[APP2]}, which "
            "PostgreSQL would refuse",
        ),
        (
            LB,
            {"loadbalancer_tls_certificate": "-----BEGIN CERTIFICATE-----\nnot one\n"},
            "loadbalancer_tls_private_key",
        ),
    ],
    ids=["differing-auth-secrets", "app-host-not-admitted", "certificate-without-key"],
)
def test_bad_input_is_refused_before_any_host_changes(project, host, values, message):
    before = snapshot()
    path = write_host_vars(project, host, values)
    try:
        result = playbook(project, "deploy")
    finally:
        path.unlink()
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert message in text, result.stdout[-3000:]
    assert "Docker Engine on the app hosts" not in result.stdout
    for secret in SECRETS.values():
        assert secret not in result.stdout
    assert snapshot() == before


def test_a_load_balancer_without_app_hosts_is_refused(project):
    before = snapshot()
    hosts = project / "inventory" / "production" / "hosts.yml"
    original = hosts.read_text()
    inventory = yaml.safe_load(original)
    inventory["all"]["children"]["chainlit"]["hosts"] = {}
    hosts.write_text(yaml.safe_dump(inventory))
    try:
        result = playbook(project, "deploy")
    finally:
        hosts.write_text(original)
    assert result.returncode != 0
    assert "The load balancer has no app hosts" in " ".join(result.stdout.split())
    assert snapshot() == before


def test_deploy_in_check_mode_on_the_new_servers_changes_nothing(project):
    before = snapshot()
    result = playbook(project, "deploy", "--check")
    assert result.returncode == 0, result.stdout[-5000:]
    recap = recap_lines(result)
    assert len(recap) == 4, recap
    assert all(" changed=0 " not in line for line in recap), recap
    for secret in SECRETS.values():
        assert secret not in result.stdout
    assert snapshot() == before


def test_deploy_over_ssh_gives_every_app_host_the_same_release(project):
    result = playbook(project, "deploy")
    assert result.returncode == 0, result.stdout[-5000:]
    # Over SSH as the login user: no docker connection anywhere.
    assert "docker_api" not in result.stdout
    for secret in SECRETS.values():
        assert secret not in result.stdout
    # One build, the same bits: the same image ID on both app hosts, and
    # the same auth secret.
    assert serving_image(APP1) == serving_image(APP2)
    secret = [
        hashlib.sha256(on(app, "grep ^CHAINLIT_AUTH_SECRET= /opt/chainlit/.env").encode()).digest()
        for app in (APP1, APP2)
    ]
    assert secret[0] == secret[1]
    assert on(APP1, "grep ^CHAINLIT_URL= /opt/chainlit/.env") == f"CHAINLIT_URL={PUBLIC_URL}"
    # PostgreSQL on its private address; pg_hba admits exactly the app hosts.
    listening = sql("SHOW listen_addresses")
    assert listening == f"localhost,{ADDRESS[DB]}", listening
    hba = on(DB, "grep -E '^host' /etc/postgresql/*/main/pg_hba.conf")
    admitted = {line.split()[3] for line in hba.splitlines()} - {"127.0.0.1/32", "::1/128"}
    assert admitted == {f"{ADDRESS[APP1]}/32", f"{ADDRESS[APP2]}/32"}, hba
    assert "scram-sha-256" in hba
    # The example turns TLS on: the app hosts are admitted over TLS only.
    kinds = {line.split()[3]: line.split()[0] for line in hba.splitlines()}
    assert {kinds[f"{ADDRESS[a]}/32"] for a in (APP1, APP2)} == {"hostssl"}, hba
    assert on(APP1, "grep -c '^DATABASE_URL=.*sslmode=require' /opt/chainlit/.env") == "1"

    # A rerun changes nothing on any host: timed by bench/noop_deploy (#11),
    # its figures kept in artifacts/.
    timed = bench(
        project,
        "fleet-noop-deploy.txt",
        "noop_deploy",
        "--project",
        str(project),
        "--inventory",
        "inventory/production",
        "--playbook",
        "chainlit_deploy.stack.deploy",
        "--runs",
        "1",
    )
    assert timed.returncode == 0, (timed.stdout + timed.stderr)[-3000:]
    runs = [line for line in timed.stdout.splitlines() if line.startswith("run ")]
    assert len(runs) == 1, timed.stdout
    assert all(" hosts 4 " in line and line.endswith(" changed 0") for line in runs), runs


def test_chats_persist_through_the_load_balancer_over_https(project):
    verified = playbook(project, "verify")
    assert verified.returncode == 0, verified.stdout[-3000:]
    before = data()
    seen = chats(project, 8)
    assert seen["chats"]["failed"] == 0, seen
    assert seen["chats"]["total"] >= 2, seen
    assert seen["health"]["failed"] == 0, seen
    after = data()
    assert len(after["Thread"] - before["Thread"]) >= seen["chats"]["total"]
    # HTTP is sent to HTTPS.
    plain = http.client.HTTPConnection(ADDRESS[LB], 80, timeout=10)
    plain.request("GET", "/")
    redirect = plain.getresponse()
    assert redirect.status == 301, redirect.status
    assert redirect.getheader("Location", "").startswith(PUBLIC_URL), redirect.getheaders()


def plain_startup(instance: str) -> str:
    """The server's answer to a PostgreSQL startup message without TLS, sent
    from an instance as the app's user."""
    probe = (
        "import socket, struct, sys; s = socket.create_connection((sys.argv[1], 5432), 5); "
        "body = struct.pack('!i', 196608) + b'user\\0chainlit\\0database\\0chainlit\\0\\0'; "
        "s.sendall(struct.pack('!i', len(body) + 4) + body); print(s.recv(4096))"
    )
    return subprocess.run(
        ["docker", "exec", instance, "python3", "-c", probe, ADDRESS[DB]],
        capture_output=True,
        text=True,
    ).stdout


def test_postgres_refuses_the_load_balancer_host():
    # The server answers, and refuses it by pg_hba.conf.
    answer = plain_startup(LB)
    assert "no pg_hba.conf entry" in answer and ADDRESS[LB] in answer, answer
    # The app hosts do get in (verify above), over TLS only: without it an
    # app host is refused too, and every connection of the app's uses TLS.
    answer = plain_startup(APP1)
    assert "no pg_hba.conf entry" in answer and "no encryption" in answer, answer
    connections = sql(
        "SELECT s.ssl, count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) "
        "WHERE a.usename = $$chainlit$$ AND a.client_addr IS NOT NULL GROUP BY s.ssl"
    )
    assert connections.startswith("t|") and "\n" not in connections, connections


def test_an_app_host_that_cannot_reach_the_database_is_named_before_it_releases(project):
    """A firewall on app2 drops its traffic to the database port (the host's
    own and its containers'): chats served there fail and verify fails;
    deploy names app2, the address and the fix, and changes nothing there;
    once the firewall lets it through, verify passes again."""
    image = serving_image(APP2)
    rule = f"-d {ADDRESS[DB]} -p tcp --dport 5432 -j REJECT"
    on(APP2, f"iptables -I OUTPUT {rule} && iptables -I DOCKER-USER {rule}")
    try:
        broken = playbook(project, "verify")
        assert broken.returncode != 0, broken.stdout[-3000:]
        refused = playbook(project, "deploy")
        assert refused.returncode != 0
        text = " ".join(refused.stdout.split())
        assert f"{APP2} cannot reach its database at {ADDRESS[DB]}:5432" in text, text[-3000:]
        assert f"a firewall lets {ADDRESS[APP2]} through to port 5432" in text
        assert "nothing was released on it" in text
        assert serving_image(APP2) == image
    finally:
        on(APP2, f"iptables -D OUTPUT {rule}; iptables -D DOCKER-USER {rule}", check=False)
    healed = playbook(project, "verify")
    assert healed.returncode == 0, healed.stdout[-3000:]


def test_a_rolling_rebuild_fails_no_probe_and_no_chat(project):
    image_before = serving_image(APP1)
    figures = roll(project, "rebuild")
    assert figures["chats"]["total"] >= 5, figures["chats"]
    # One build on the first app host, loaded by the second: same new image.
    assert serving_image(APP1) == serving_image(APP2) != image_before
    (project / "image-before-rebuild").write_text(image_before)


def test_a_rolling_rollback_returns_every_app_host_to_the_previous_image(project):
    rebuilt = serving_image(APP1)
    figures = roll(project, "rollback")
    assert figures["chats"]["total"] >= 1, figures["chats"]
    previous = (project / "image-before-rebuild").read_text()
    assert serving_image(APP1) == serving_image(APP2) == previous != rebuilt


def test_a_release_failing_on_the_first_host_stops_the_roll(project):
    images = {app: serving_image(app) for app in (APP1, APP2)}
    # A new release that refuses every login: its image builds and gets
    # healthy, and verify fails on the first app host.
    app_py = project / "app" / "app.py"
    original = app_py.read_text()
    app_py.write_text(
        original + "\n\n@cl.password_auth_callback\n"
        "def refuse_everyone(username: str, password: str):\n    return None\n"
    )
    try:
        result = playbook(project, "deploy")
    finally:
        app_py.write_text(original)
    assert result.returncode != 0
    text = " ".join(result.stdout.split())
    assert f"so {APP1} was rolled back to the previous image, which passes verify" in text, (
        result.stdout[-4000:]
    )
    # The roll stopped there: no task ran on app2 after app1 failed, and app2
    # still serves the release it had; app1 serves its previous image again.
    after_failure = result.stdout.split(f"so {APP1} was rolled back")[-1].split("PLAY RECAP")[0]
    assert f"[{APP2}]" not in after_failure, after_failure
    assert serving_image(APP2) == images[APP2]
    assert serving_image(APP1) == images[APP1]
    seen = chats(project, 5)
    assert seen["chats"]["failed"] == 0 and seen["chats"]["total"] >= 1, seen
