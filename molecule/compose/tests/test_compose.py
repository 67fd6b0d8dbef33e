"""The compose stack of the original analysis (converge.yml): troubleshoot
names each of its faults with a fix for compose users; following the fixes
as printed makes chats persist (a real chat through the app's port, read
back); faults the analysis does not list are named too, each while a chat
really fails, and chats work again once it is repaired.

The tests run in file order and build on each other, as a user's session
does: the first finds the stack broken, the second repairs it step by step.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from fault_injection import findings

DIR = "/srv/chatrebrasil"
COMPOSE = f"cd {DIR} && docker compose"
SCHEMA = Path(__file__).parents[3] / "roles" / "chainlit_app" / "files" / "schema"
ALICE_THREADS = (
    "exec -T db-persist psql -U chainlit -d chainlit -XtAc "
    '\'SELECT count(*) FROM "Thread" t JOIN "User" u ON u.id = t."userId" '
    "WHERE u.identifier = '\"'\"'alice'\"'\"''"
)
ANALYSIS_FAULTS = {
    "compose_wrong_database_variable",
    "compose_asyncpg_missing",
    "compose_tables_missing",
    "compose_persistence_section",
}


def troubleshoot(run_playbook, **extra: str):
    result = run_playbook(
        "troubleshoot.yml",
        {"troubleshoot_hosts": "all", "troubleshoot_compose_dir": DIR, **extra},
    )
    assert result.returncode == 0, result.stdout
    return result


WAIT_APP = (
    "python3 - <<'PY'\n"
    "import time, urllib.request\n"
    "for _ in range(90):\n"
    "    try:\n"
    "        urllib.request.urlopen('http://127.0.0.1:8502/', timeout=2)\n"
    "        break\n"
    "    except Exception:\n"
    "        time.sleep(1)\n"
    "else:\n"
    "    raise SystemExit('the app does not answer on 127.0.0.1:8502')\n"
    "PY"
)


def chat(run_playbook):
    return run_playbook("chat.yml")


def wait_app(host) -> None:
    """The app answers on its published port (it takes seconds to start)."""
    host.run_expect([0], WAIT_APP)


def compose(host, args: str) -> str:
    return host.check_output(f"{COMPOSE} {args} 2>&1")


def fix_of(output: str, finding: str) -> str:
    """The FIX line troubleshoot printed for a finding."""
    lines = output.splitlines()
    for n, line in enumerate(lines):
        if f"[{finding}] FINDING" in line:
            for later in lines[n + 1 : n + 4]:
                if "FIX:" in later:
                    return later.split("FIX:", 1)[1].strip().rstrip('",')
    raise AssertionError(f"no fix printed for {finding}:\n{output}")


def test_the_stack_of_the_analysis_saves_no_chat_and_each_fault_is_named(host, run_playbook):
    wait_app(host)
    broken = chat(run_playbook)
    assert broken.returncode != 0, "a chat persisted on the analysis' broken stack"
    result = troubleshoot(run_playbook)
    assert findings(result.stdout) == ANALYSIS_FAULTS, result.stdout
    text = host.file(f"{DIR}/docker-compose.yml").content_string.splitlines()
    line = next(n for n, t in enumerate(text, 1) if "CHAINLIT_DATABASE_URL" in t)
    where = f"{DIR}/docker-compose.yml:{line}"
    assert where in fix_of(result.stdout, "compose_wrong_database_variable")
    assert "requirements.txt" in fix_of(result.stdout, "compose_asyncpg_missing")
    assert "User, Thread, Step, Element, Feedback" in result.stdout
    # Nothing it reads is printed: not the password in the URL, not the secret.
    assert "chainlit:chainlit@" not in result.stdout
    assert "compose-test-secret" not in result.stdout


def test_the_fixes_as_printed_make_chats_persist(host, run_playbook):
    # 1. The variable: renamed in the line named, then `docker compose up -d`.
    rename = "s/CHAINLIT_DATABASE_URL=/DATABASE_URL=/"
    host.run_expect([0], f"sed -i '{rename}' {DIR}/docker-compose.yml")
    compose(host, "up -d app-agent")
    after = findings(troubleshoot(run_playbook).stdout)
    assert "compose_wrong_database_variable" not in after
    assert {"compose_asyncpg_missing", "compose_tables_missing"} <= after

    # 2. asyncpg added to requirements.txt, but the image not rebuilt (the
    # analysis' cached-rebuild trap): the running image is named stale.
    host.run_expect([0], f"echo 'asyncpg>=0.29.0' >> {DIR}/app-agent/requirements.txt")
    compose(host, "up -d app-agent")
    stale = troubleshoot(run_playbook).stdout
    assert "compose_image_stale" in findings(stale), stale
    assert "compose_asyncpg_missing" not in findings(stale)
    rebuild = fix_of(stale, "compose_image_stale").strip("`. ")
    assert rebuild.startswith("docker compose build --no-cache app-agent"), rebuild
    host.run_expect([0], f"cd {DIR} && {rebuild}")
    assert findings(troubleshoot(run_playbook).stdout) == {
        "compose_tables_missing",
        "compose_persistence_section",
    }

    # 3. The tables, created with the files the fix names, in order.
    tables = troubleshoot(run_playbook).stdout
    assert str(SCHEMA) in fix_of(tables, "compose_tables_missing")
    for sql in sorted(SCHEMA.glob("*.sql")):
        host.run_expect(
            [0],
            f"{COMPOSE} exec -T db-persist psql -U chainlit -d chainlit -v ON_ERROR_STOP=1 "
            f"<<'SQL'\n{sql.read_text()}\nSQL",
        )

    # 4. The obsolete [persistence] section, removed (it changed nothing).
    host.run_expect([0], f"sed -i '/^\\[persistence\\]/,$d' {DIR}/app-agent/.chainlit/config.toml")
    compose(host, "build app-agent")
    compose(host, "up -d app-agent")
    wait_app(host)
    healthy = troubleshoot(run_playbook).stdout
    assert findings(healthy) == set(), healthy
    repaired = chat(run_playbook)
    assert repaired.returncode == 0, repaired.stdout
    assert int(compose(host, ALICE_THREADS).strip()) >= 1


def test_the_app_container_given_by_name_is_diagnosed_as_its_project(host, run_playbook):
    name = compose(host, "ps -q app-agent").strip()
    container = host.check_output(f"docker inspect -f '{{{{.Name}}}}' {name}").lstrip("/")
    result = run_playbook(
        "troubleshoot.yml", {"troubleshoot_hosts": "all", "troubleshoot_container": container}
    )
    assert result.returncode == 0, result.stdout
    assert findings(result.stdout) == set(), result.stdout
    assert "chatrebrasil (compose" in result.stdout


def fault_pass(host, run_playbook, inject: str, finding: str, repair: str) -> None:
    """Inject, see a chat fail and troubleshoot name the fault, repair, chat."""
    host.run_expect([0], inject)
    wait_app(host)
    try:
        broken = chat(run_playbook)
        assert broken.returncode != 0, f"a chat persisted with the fault in place: {inject}"
        named = findings(troubleshoot(run_playbook).stdout)
        assert finding in named, named
    finally:
        host.run_expect([0], repair)
    wait_app(host)
    repaired = chat(run_playbook)
    assert repaired.returncode == 0, repaired.stdout


def test_the_database_stopped_is_named(host, run_playbook):
    fault_pass(
        host,
        run_playbook,
        f"{COMPOSE} stop db-persist",
        "compose_database_down",
        f"{COMPOSE} up -d db-persist",
    )


def url_edit(old: str, new: str) -> str:
    return (
        f"sed -i 's#{re.escape(old)}#{new}#' {DIR}/docker-compose.yml && {COMPOSE} up -d app-agent"
    )


def test_a_password_the_database_does_not_have_is_named(host, run_playbook):
    fault_pass(
        host,
        run_playbook,
        url_edit("chainlit:chainlit@", "chainlit:changed-in-compose@"),
        "compose_database_login_failed",
        url_edit("chainlit:changed-in-compose@", "chainlit:chainlit@"),
    )


def test_localhost_as_the_database_host_is_named(host, run_playbook):
    fault_pass(
        host,
        run_playbook,
        url_edit("@db-persist:5432", "@localhost:5432"),
        "compose_database_unreachable",
        url_edit("@localhost:5432", "@db-persist:5432"),
    )


def test_an_auth_secret_left_out_of_compose_is_named(host, run_playbook):
    """A fault of real operations: the secret left out of the compose file (a
    new server, a copied file). Chainlit 2.12 then refuses to start ("You must
    provide a JWT secret", chainlit/auth ensure_jwt_secret): no login, no
    History, nothing saved. The app keeps restarting, so it is not waited for."""
    saved = "/root/docker-compose.yml.auth"
    host.run_expect(
        [0],
        f"cp {DIR}/docker-compose.yml {saved} && "
        f"sed -i '/CHAINLIT_AUTH_SECRET=/d' {DIR}/docker-compose.yml && "
        f"{COMPOSE} up -d app-agent && sleep 5",
    )
    try:
        broken = chat(run_playbook)
        assert broken.returncode != 0, "a chat persisted without the auth secret"
        assert "JWT secret" in compose(host, "logs --tail 30 app-agent")
        result = troubleshoot(run_playbook)
        assert "compose_no_auth" in findings(result.stdout), result.stdout
        assert "has no CHAINLIT_AUTH_SECRET" in result.stdout
    finally:
        host.run_expect([0], f"cp {saved} {DIR}/docker-compose.yml && {COMPOSE} up -d app-agent")
    wait_app(host)
    repaired = chat(run_playbook)
    assert repaired.returncode == 0, repaired.stdout


def test_a_database_on_no_volume_is_named_and_its_chats_come_back_with_the_volume(
    host, run_playbook
):
    """A fault of real compose files (volumes forgotten or mounted at a mistyped
    path, e.g. strnad/CrewAI-Studio#100, clinwiki-org/clinwiki#788): PostgreSQL
    writes into the container's own layer, and a recreated container starts
    empty. Named while it is in place; the volume mounted back gives every chat
    back."""
    kept = int(compose(host, ALICE_THREADS).strip())
    assert kept >= 1
    fault_pass(
        host,
        run_playbook,
        f"cp {DIR}/docker-compose.yml /root/docker-compose.yml.saved && "
        f"sed -i '/^    volumes:$/d; /- pgdata:\\/var\\/lib\\/postgresql\\/data/d' "
        f"{DIR}/docker-compose.yml && {COMPOSE} up -d db-persist && sleep 3",
        "compose_database_not_persistent",
        f"cp /root/docker-compose.yml.saved {DIR}/docker-compose.yml && "
        f"{COMPOSE} up -d db-persist && sleep 3",
    )
    assert int(compose(host, ALICE_THREADS).strip()) >= kept + 1


THREAD_IDS = 'SELECT id FROM "Thread" ORDER BY id'
# Every thread a user's History lists, each opened, with its number of steps.
HISTORY = r"""
import http.cookiejar, json, sys, urllib.parse, urllib.request
base, user, password = sys.argv[1:4]
opener = urllib.request.build_opener(
    urllib.request.ProxyHandler({}),
    urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
)
login = urllib.parse.urlencode({"username": user, "password": password}).encode()
opener.open(base + "/login", login, timeout=10).read()


def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(
        base + path, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with opener.open(request, timeout=10) as response:
        return json.load(response)


page = {"pagination": {"first": 100, "cursor": None}, "filter": {"search": None, "feedback": None}}
listed = call("POST", "/project/threads", page)["data"]
steps = {t["id"]: len(call("GET", "/project/thread/" + t["id"])["steps"]) for t in listed}
print(json.dumps(steps))
"""
USERS = {"alice": "wonderland", "bob": "builder"}


def history(host, port: int) -> dict[str, dict[str, int]]:
    """Each user's History as the app at ``port`` serves it: thread -> steps."""
    out = {}
    for user, password in USERS.items():
        shown = host.check_output(
            f"python3 - http://127.0.0.1:{port} {user} {password} <<'PY'\n{HISTORY}\nPY"
        )
        out[user] = json.loads(shown)
    return out


STEP_COUNT = 'SELECT count(*) FROM "Step"'
PROPS_COLUMN = (
    "SELECT count(*) FROM information_schema.columns "
    "WHERE table_name = $$Element$$ AND column_name = $$props$$"
)
METADATA_DEFAULT = (
    "SELECT column_default FROM information_schema.columns "
    "WHERE table_name = $$Thread$$ AND column_name = $$metadata$$"
)


def compose_sql(host, sql: str) -> str:
    return compose(host, f"exec -T db-persist psql -U chainlit -d chainlit -XtAc '{sql}'")


def managed_sql(host, sql: str) -> str:
    return host.check_output(f"sudo -u postgres psql -d chainlit -XtAc '{sql}'")


def test_adopt_refuses_the_port_the_compose_app_holds_and_changes_nothing(host, run_playbook):
    refused = run_playbook("adopt.yml", {"chainlit_app_port": 8502})
    assert refused.returncode != 0
    assert "8502" in refused.stdout and "another service" in refused.stdout, refused.stdout
    assert host.run("docker container inspect chainlit").rc != 0, "the collection's app was started"
    assert "running" in compose(host, "ps --format '{{.State}}' app-agent")
    wait_app(host)


def test_adopt_carries_every_chat_over_and_stops_the_compose_stack(host, run_playbook):
    """A repaired stack with two users' chats is adopted: every thread of each
    is in their History on the new deployment and opens with all its steps."""
    bob = run_playbook("chat.yml", {"chat_user": "bob", "chat_password": "builder"})
    assert bob.returncode == 0, bob.stdout
    before = history(host, 8502)
    assert len(before["alice"]) >= 2 and len(before["bob"]) >= 1, before
    threads = compose_sql(host, THREAD_IDS).split()
    steps = int(compose_sql(host, STEP_COUNT))
    assert len(threads) >= 2 and steps >= 2
    # A schema older than the collection's, as tables made by hand from an
    # older release's schema are: no "Element"."props" (custom elements' props)
    # and no default for "Thread".metadata. The restore replaces the managed
    # tables with these; adopt must bring them forward before verify.
    compose_sql(
        host,
        'ALTER TABLE "Element" DROP COLUMN "props"; '
        'ALTER TABLE "Thread" ALTER COLUMN "metadata" DROP DEFAULT',
    )
    adopted = run_playbook("adopt.yml")
    assert adopted.returncode == 0, adopted.stdout
    # verify ran after the restore (restore.yml): alice logged in to the
    # collection's app, chatted, resumed; its probe chat was deleted again.
    n = len(threads)
    assert f"threads: {n} in the compose database, {n} now" in adopted.stdout, adopted.stdout
    said = " ".join(adopted.stdout.split())
    assert "checks passed" in said
    # Adopt builds the analysis' app with the generic Dockerfile, which writes
    # what Chainlit would write at startup: it runs on a read-only root.
    assert "runs on a writable root filesystem" not in said, adopted.stdout
    read_only = host.check_output("docker inspect -f '{{.HostConfig.ReadonlyRootfs}}' chainlit")
    assert read_only == "true"
    assert managed_sql(host, THREAD_IDS).split() == threads
    assert int(managed_sql(host, STEP_COUNT)) == steps
    assert history(host, 8503) == before
    # The schema moved forward: the column and the default are back.
    assert managed_sql(host, PROPS_COLUMN) == "1"
    assert "'{}'::jsonb" in managed_sql(host, METADATA_DEFAULT)
    # Stopped, not removed: its containers and its volume are still there.
    states = compose(host, "ps -a --format '{{.Service}} {{.State}}'").split("\n")
    assert sorted(states) == ["app-agent exited", "db-persist exited"], states
    assert "chatrebrasil_pgdata" in host.check_output("docker volume ls --format '{{.Name}}'")
