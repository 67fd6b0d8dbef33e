"""The whole stack: deploy, verify, an app that is not ours, then each fault
of the original analysis and of releases injected into the running
deployment (molecule/fault_injection.py): chats break, troubleshoot names it
(and nothing but it and its documented real consequences), a redeploy repairs
it, verify passes again. molecule/faults injects the database faults."""

from __future__ import annotations

import os
import shutil
import uuid
from pathlib import Path

import pytest
from fault_injection import (
    CAPTURE,
    ENV,
    OTHER_SLOT,
    Fault,
    app_container,
    edited_image,
    findings,
    inject_diagnose_repair,
    record,
    run_app,
)

FAULTS = [
    Fault(
        "wrong_database_variable",
        f"sed -i 's/^DATABASE_URL=/CHAINLIT_DATABASE_URL=/' {ENV} && " + run_app(),
        also={"database_url_missing"},
    ),
    Fault(
        "database_url_scheme",
        f"sed -i 's#^DATABASE_URL=postgresql://#DATABASE_URL=postgresql+asyncpg://#' {ENV} && "
        + run_app(),
    ),
    Fault(
        "quoted_env_value",
        f"sed -i 's#^DATABASE_URL=\\(.*\\)$#DATABASE_URL=\"\\1\"#' {ENV} && " + run_app(),
    ),
    Fault(
        "asyncpg_missing",
        edited_image("python -m pip uninstall -y -q asyncpg", "chainlit-fault:no-asyncpg"),
        also={"stale_image"},
    ),
    Fault(
        "postgresql_down",
        "systemctl stop postgresql",
        restore="systemctl start postgresql && docker restart chainlit >/dev/null",
    ),
    Fault(
        "wrong_db_password",
        f"sed -i 's#^\\(DATABASE_URL=postgresql://chainlit:\\)[^@]*@#\\1wrong@#' {ENV} && "
        + run_app(),
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
        edited_image("sed -i /password_auth_callback/d /app/app.py", "chainlit-fault:no-auth"),
        also={"stale_image"},
    ),
    Fault(
        "auth_secret_missing",
        f"sed -i '/^CHAINLIT_AUTH_SECRET=/d' {ENV} && " + run_app(),
        also={"container_not_running", "container_restarting", "app_not_answering"},
        settle="sleep 8",
    ),
    Fault(
        "container_unhealthy",
        # An explicit start period: the image's own 30 s would keep it "starting".
        run_app(
            options="--health-cmd false --health-interval 2s --health-retries 1 "
            "--health-start-period 1s"
        ),
        settle="sleep 8",
        breaks_chats=False,
    ),
    Fault(
        "obsolete_persistence_section",
        edited_image(
            'printf "[persistence]\\nenabled = true\\n" >> /app/.chainlit/config.toml',
            "chainlit-fault:persistence",
        ),
        also={"stale_image"},
        breaks_chats=False,
    ),
    Fault(
        "stale_image",
        "true",
        troubleshoot_vars={"troubleshoot_app_src": "EDITED_COPY"},
        breaks_chats=False,
    ),
    # nginx, the app's front, stopped: the deploy starts it again.
    Fault("proxy_down", "systemctl stop nginx"),
    # The container recreated by hand on the other slot: nginx answers 502.
    Fault("proxy_upstream_mismatch", run_app(port=OTHER_SLOT)),
    # A release interrupted before its switch; the deploy leaves it (no new release).
    Fault(
        "stale_next_container",
        CAPTURE + app_container("chainlit-next", "$img", OTHER_SLOT),
        restore="docker rm -f chainlit-next >/dev/null",
        breaks_chats=False,
    ),
]

DIAGNOSED: dict[str, bool] = {}


def test_deploy_then_verify_passes(run_playbook):
    result = run_playbook("verify_stack.yml")
    assert result.returncode == 0, result.stdout
    assert "10 of 10 checks passed" in result.stdout


def test_troubleshoot_finds_nothing_on_the_healthy_stack(run_playbook):
    result = run_playbook("troubleshoot_stack.yml", None, "--check")
    assert result.returncode == 0, result.stdout
    assert findings(result.stdout) == set()


def test_an_app_that_is_not_ours_deploys_and_verify_passes_without_an_app_switch(run_playbook):
    """Its own password callback, replies that repeat nothing, no Dockerfile:
    verify proves its chats persist by its password login, and by a token the
    probe signs itself; troubleshoot finds nothing wrong with it."""
    password = f"demo-{uuid.uuid4().hex[:12]}"
    deployed = run_playbook("thirdparty_app.yml", {"thirdparty_demo_password": password})
    assert deployed.returncode == 0, deployed.stdout
    app = {"verify_app_name": "thirdparty", "verify_expect_context": False}
    by_password = run_playbook(
        "verify_stack.yml", {**app, "verify_user": "demo", "verify_password": password}
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


def test_every_injected_fault_was_diagnosed():
    summary = record("default", DIAGNOSED, len(FAULTS))
    assert sum(DIAGNOSED.values()) == len(FAULTS), summary
