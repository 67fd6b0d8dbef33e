"""The whole stack: deploy, verify, an app that is not ours, then each fault
of the original analysis and of releases injected into the running
deployment (molecule/fault_injection.py): chats break, troubleshoot names it
(and nothing but it and its documented real consequences), a redeploy repairs
it, verify passes again. molecule/faults injects the database faults."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import uuid
from pathlib import Path

import pytest
from fault_injection import (
    CAPTURE,
    ENV,
    OTHER_SLOT,
    SAVE_APP,
    UNDO_APP,
    WAIT_APP,
    Fault,
    app_container,
    edited_image,
    findings,
    heal_together,
    inject_diagnose_repair,
    record,
    run_app,
)

# Every fault but one is undone by hand after its diagnosis (UNDO_APP and the
# like); heal_together then injects them all at once and one deploy heals them.
FAULTS = [
    Fault(
        "wrong_database_variable",
        f"{SAVE_APP} && sed -i 's/^DATABASE_URL=/CHAINLIT_DATABASE_URL=/' {ENV} && " + run_app(),
        also={"database_url_missing"},
        undo=UNDO_APP,
    ),
    Fault(
        "database_url_scheme",
        f"{SAVE_APP} && "
        f"sed -i 's#^DATABASE_URL=postgresql://#DATABASE_URL=postgresql+asyncpg://#' {ENV} && "
        + run_app(),
        undo=UNDO_APP,
    ),
    Fault(
        "quoted_env_value",
        f"{SAVE_APP} && sed -i 's#^DATABASE_URL=\\(.*\\)$#DATABASE_URL=\"\\1\"#' {ENV} && "
        + run_app(),
        undo=UNDO_APP,
    ),
    Fault(
        "asyncpg_missing",
        f"{SAVE_APP} && "
        + edited_image("python -m pip uninstall -y -q asyncpg", "chainlit-fault:no-asyncpg"),
        also={"stale_image"},
        undo=UNDO_APP,
    ),
    Fault(
        "postgresql_down",
        "systemctl stop postgresql",
        undo=f"systemctl start postgresql && docker restart chainlit >/dev/null && {CAPTURE}"
        + WAIT_APP,
    ),
    Fault(
        "wrong_db_password",
        f"{SAVE_APP} && "
        f"sed -i 's#^\\(DATABASE_URL=postgresql://chainlit:\\)[^@]*@#\\1wrong@#' {ENV} && "
        + run_app(),
        undo=UNDO_APP,
    ),
    Fault(
        "schema_tables_missing",
        """sudo -u postgres psql -d chainlit -Xqc 'DROP TABLE "Feedback"' """
        """-c 'ALTER TABLE "Element" DROP COLUMN language'""",
        required={"schema_tables_missing", "schema_columns_missing"},
        # The migrations stay recorded as applied: the deploy repairs the schema.
    ),
    Fault(
        "no_auth_callback",
        f"{SAVE_APP} && "
        + edited_image("sed -i /password_auth_callback/d /app/app.py", "chainlit-fault:no-auth"),
        also={"stale_image"},
        undo=UNDO_APP,
    ),
    Fault(
        "auth_secret_missing",
        f"{SAVE_APP} && sed -i '/^CHAINLIT_AUTH_SECRET=/d' {ENV} && " + run_app(),
        also={"container_not_running", "container_restarting", "app_not_answering"},
        settle="sleep 8",
        undo=UNDO_APP,
    ),
    Fault(
        "container_unhealthy",
        # An explicit start period: the image's own 30 s would keep it "starting".
        f"{SAVE_APP} && "
        + run_app(
            options="--health-cmd false --health-interval 2s --health-retries 1 "
            "--health-start-period 1s"
        ),
        settle="sleep 8",
        breaks_chats=False,
        undo=UNDO_APP,
    ),
    Fault(
        "obsolete_persistence_section",
        f"{SAVE_APP} && "
        + edited_image(
            'printf "[persistence]\\nenabled = true\\n" >> /app/.chainlit/config.toml',
            "chainlit-fault:persistence",
        ),
        also={"stale_image"},
        breaks_chats=False,
        undo=UNDO_APP,
    ),
    Fault(
        "stale_image",
        "true",
        troubleshoot_vars={"troubleshoot_app_src": "EDITED_COPY"},
        breaks_chats=False,
        undo="true",
    ),
    # nginx, the app's front, stopped: the deploy starts it again.
    Fault("proxy_down", "systemctl stop nginx", undo="systemctl start nginx"),
    # The container recreated by hand on the other slot: nginx answers 502.
    Fault("proxy_upstream_mismatch", f"{SAVE_APP} && " + run_app(port=OTHER_SLOT), undo=UNDO_APP),
    # A release interrupted before its switch; the deploy leaves it (no new
    # release). Not injected together: proxy_upstream_mismatch takes its port.
    Fault(
        "stale_next_container",
        CAPTURE + app_container("chainlit-next", "$img", OTHER_SLOT),
        breaks_chats=False,
        undo="docker rm -f chainlit-next >/dev/null",
        together=False,
    ),
]

DIAGNOSED: dict[str, bool] = {}


def test_deploy_then_verify_passes(run_playbook):
    result = run_playbook("verify_stack.yml")
    assert result.returncode == 0, result.stdout
    assert "10 of 10 checks passed" in result.stdout


def test_the_release_checks_its_health_every_second_while_it_starts(host):
    """Docker 25 or later (Debian 13's docker.io 26): every second during the
    start period, every 5 s after it (molecule/chainlit_app: an older engine)."""
    api = host.check_output("docker version --format '{{.Server.APIVersion}}'")
    assert tuple(map(int, api.split("."))) >= (1, 44), api
    check = json.loads(host.check_output("docker container inspect chainlit"))[0]
    assert check["Config"]["Healthcheck"]["StartInterval"] == 1_000_000_000
    assert check["Config"]["Healthcheck"]["Interval"] == 5_000_000_000
    assert check["State"]["Health"]["Status"] == "healthy"


def test_troubleshoot_finds_nothing_on_the_healthy_stack(run_playbook):
    result = run_playbook("troubleshoot_stack.yml", None, "--check")
    assert result.returncode == 0, result.stdout
    assert findings(result.stdout) == set()


# An app that is not ours, deployed by playbooks/deploy.yml beside the
# reference app, on a database of its own: its own password callback, fixed
# replies that repeat nothing, no Dockerfile. Each release builds from a
# wheelhouse `make thirdparty-wheelhouses` resolved from the same requirements (2.12.0:
# the reference app's); molecule/chainlit_app builds cold from the index.
THIRD_PARTY_PASSWORD = f"demo-{uuid.uuid4().hex[:12]}"
THIRD_PARTY = {
    "chainlit_app_name": "thirdparty",
    "chainlit_app_dir": "/opt/thirdparty",
    "chainlit_app_port": 8504,
    "chainlit_app_slot_ports": [8621, 8622],
    "chainlit_app_image_archive_dir": "",
    "chainlit_app_db_name": "thirdparty",
    "chainlit_app_env": {"DEMO_PASSWORD": THIRD_PARTY_PASSWORD},
    "postgres_databases": [
        {"name": "chainlit", "owner": "chainlit"},
        {"name": "thirdparty", "owner": "chainlit"},
    ],
    "verify_app_name": "thirdparty",
    "verify_expect_context": False,
    "verify_user": "demo",
    "verify_password": THIRD_PARTY_PASSWORD,
}
THIRD_PARTY_ROWS = (
    'SELECT u.identifier, t.id, t.name, s.id, s.type, s.output FROM "Thread" t '
    'JOIN "User" u ON u.id = t."userId" JOIN "Step" s ON s."threadId" = t.id ORDER BY t.id, s.id'
)


SEED_2_0 = """
INSERT INTO "User" (id, identifier, metadata) VALUES ('u-demo-1', 'demo-user', '{}');
INSERT INTO "Thread" (id, name, "userId", metadata)
  VALUES ('t-before-1', 'asked before the upgrade', 'u-demo-1', '{"k": 1}');
INSERT INTO "Step" (id, name, type, "threadId", output, metadata, "startTime", "endTime")
  VALUES ('s-before-1', 'demo-user', 'user_message', 't-before-1', 'hello from 2.0', '{}',
          now(), now()),
         ('s-before-2', 'Assistant', 'assistant_message', 't-before-1', 'hi', '{}', now(), now());
INSERT INTO "Element" (id, "threadId", "stepId", metadata, mime, name, url, display)
  VALUES ('e-before-1', 't-before-1', 's-before-2', '{}', 'text/plain', 'notes.txt',
          'https://example.invalid/notes.txt', 'inline');
INSERT INTO "Feedback" (id, "stepId", name, value, comment)
  VALUES ('f-before-1', 's-before-2', 'user_feedback', 1, 'useful');
"""
THIRD_PARTY_ELEMENTS = (
    'SELECT e.id, e."threadId", e."stepId", e.name, e.url, f.id, f.value, f.comment '
    'FROM "Element" e FULL JOIN "Feedback" f ON f."stepId" = e."stepId" ORDER BY e.id, f.id'
)


CACHE = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / ".cache"
WHEELHOUSES = {
    "2.0.603": CACHE / "wheelhouse-2.0.603",
    "2.12.0": CACHE / "wheelhouse",
}


def deploy_third_party(run_playbook, tmp_path: Path, chainlit: str):
    app = tmp_path / f"thirdparty-{chainlit}"
    shutil.copytree(Path(__file__).parents[1] / "files" / "thirdparty-app", app)
    (app / "requirements.txt").write_text(f"chainlit=={chainlit}\n")
    wheelhouse = WHEELHOUSES[chainlit]
    # make test makes the wheelhouses beside the Molecule lanes, each under
    # this lock: wait until it is made.
    lock = wheelhouse.with_name(wheelhouse.name + ".lock")
    if lock.exists():
        with lock.open() as held:
            fcntl.flock(held, fcntl.LOCK_SH)
    assert wheelhouse.is_dir(), f"{wheelhouse} is missing: run make thirdparty-wheelhouses"
    return run_playbook(
        "converge.yml",
        {**THIRD_PARTY, "chainlit_app_src": str(app), "chainlit_app_wheelhouse": str(wheelhouse)},
    )


def third_party_release(host) -> str:
    running = host.run(
        "docker exec thirdparty python -c 'import chainlit; print(chainlit.__version__)'"
    )
    return running.stdout.strip()


def third_party_sql(host, query: str) -> str:
    return host.check_output(f"sudo -u postgres psql -XtA -d thirdparty -c '{query}'")


def test_an_app_on_the_first_supported_release_upgrades_keeping_every_chat(
    host, run_playbook, tmp_path
):
    """2.0.603 (the 2.0 line, the first with the official data layer) deploys
    and passes verify (deploy runs it); pinned to 2.12.0, deploy dumps its
    database before the schema moves forward (migration 0002), every row
    written before (users, threads, steps, elements, feedback) is still there
    and verify passes. (The releases between, 2.5.5 and 2.8.5 among them, are
    upgraded from by their own data layers in
    tests/integration/test_chainlit_upgrade.py; a deploy of each here cost CI
    a minute and a half apiece.)"""
    first = deploy_third_party(run_playbook, tmp_path, "2.0.603")
    assert first.returncode == 0, first.stdout
    assert third_party_release(host) == "2.0.603"
    assert "checks passed" in " ".join(first.stdout.split())
    applied = "SELECT version FROM chainlit_schema_migrations ORDER BY version"
    assert third_party_sql(host, applied).split() == ["0001_chainlit_2_0_base"]
    # verify deletes its probe chat: a user's chat as 2.0.603 stores it.
    host.run_expect(
        [0],
        "sudo -u postgres psql -XqA -v ON_ERROR_STOP=1 -d thirdparty <<'SQL'\n"
        + SEED_2_0
        + "\nSQL",
    )
    before = third_party_sql(host, THIRD_PARTY_ROWS)
    assert before.count("\n") >= 1, before
    elements_before = third_party_sql(host, THIRD_PARTY_ELEMENTS)
    assert "e-before-1" in elements_before and "f-before-1" in elements_before
    dumps_before = host.run("ls /var/backups/chainlit-deploy/thirdparty-*.dump").stdout.split()

    upgrade = deploy_third_party(run_playbook, tmp_path, "2.12.0")
    assert upgrade.returncode == 0, upgrade.stdout
    assert third_party_release(host) == "2.12.0"
    dumps = host.run("ls /var/backups/chainlit-deploy/thirdparty-*.dump").stdout.split()
    assert len(dumps) == len(dumps_before) + 1, "no dump before the schema moved forward"
    assert third_party_sql(host, applied).split() == [
        "0001_chainlit_2_0_base",
        "0002_chainlit_2_6_thread_metadata_default",
    ]
    after = third_party_sql(host, THIRD_PARTY_ROWS)
    assert set(before.splitlines()) <= set(after.splitlines())
    assert third_party_sql(host, THIRD_PARTY_ELEMENTS) == elements_before
    assert "checks passed" in " ".join(upgrade.stdout.split())

    # No downgrade here: 0002 is readable by 2.0.601 on, so 2.0.603 could run
    # again; a downgrade the data no longer fits is refused in
    # tests/integration/test_chainlit_schema_module.py.


def test_an_app_that_is_not_ours_passes_verify_without_an_app_switch(host, run_playbook):
    """The third-party app left on 2.12.0 above: verify proves its chats persist
    by its password login, and by a token the probe signs itself; a wrong
    password names the variables to set; troubleshoot finds nothing wrong.
    (It takes `host` so that it runs right after the upgrade, in file order:
    without it pytest ran it last, after the fault pass's deploys of the
    reference app alone had rewritten pg_hba.conf without its database.)"""
    app = {"verify_app_name": "thirdparty", "verify_expect_context": False}
    by_password = run_playbook(
        "verify_stack.yml",
        {**app, "verify_user": "demo", "verify_password": THIRD_PARTY_PASSWORD},
    )
    assert by_password.returncode == 0, by_password.stdout
    assert "9 of 9 checks passed (0 skipped)" in by_password.stdout
    assert "password login of demo" in by_password.stdout
    by_token = run_playbook(
        "verify_stack.yml", {**app, "verify_login": "token", "verify_user": "chainlit-deploy-probe"}
    )
    assert by_token.returncode == 0, by_token.stdout
    assert "9 of 9 checks passed (0 skipped)" in by_token.stdout
    wrong = run_playbook("verify_stack.yml", {**app, "verify_user": "demo", "verify_password": "x"})
    assert wrong.returncode != 0
    assert "set verify_user and verify_password" in wrong.stdout
    diagnosis = run_playbook("troubleshoot_stack.yml", {"troubleshoot_app_name": "thirdparty"})
    assert diagnosis.returncode == 0, diagnosis.stdout
    assert findings(diagnosis.stdout) == set()


@pytest.mark.parametrize("fault", FAULTS, ids=lambda fault: fault.finding)
def test_troubleshoot_names_the_injected_fault_and_verify_passes_after_repair(
    host, run_playbook, tmp_path, fault
):
    extra = dict(fault.troubleshoot_vars)
    if extra.get("troubleshoot_app_src") == "EDITED_COPY":
        copy = tmp_path / "app"
        shutil.copytree(Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "app", copy)
        with (copy / "app.py").open("a") as app:
            app.write("# an edit the running image does not have\n")
        extra["troubleshoot_app_src"] = str(copy)
    DIAGNOSED[fault.finding] = False
    DIAGNOSED[fault.finding] = inject_diagnose_repair(host, run_playbook, fault, extra)


def test_one_deploy_heals_the_faults_undone_by_hand_all_injected_at_once(host, run_playbook):
    heal_together(host, run_playbook, FAULTS)


def test_every_injected_fault_was_diagnosed():
    summary = record("default", DIAGNOSED, len(FAULTS))
    assert sum(DIAGNOSED.values()) == len(FAULTS), summary
