"""The whole stack: deploy, verify, then inject each fault the troubleshoot
playbook knows into the running deployment. Troubleshoot must name that fault
(and nothing but it and its documented real consequences); after a redeploy
repairs it, verify must pass again."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ENV = "/opt/chainlit/.env"
APP_CMD = '["chainlit", "run", "app.py", "--headless", "--host", "0.0.0.0", "--port", "8000"]'
# The serving container's image and slot port (nginx forwards to it), read
# before the container is replaced.
CAPTURE = (
    "img=$(docker inspect -f '{{.Config.Image}}' chainlit) && "
    "port=$(docker inspect -f '{{range .HostConfig.PortBindings}}{{(index . 0).HostPort}}{{end}}'"
    " chainlit) && "
)
# The slot port the serving container does not use (chainlit_app_slot_ports).
OTHER_SLOT = '$(test "$port" = 8601 && echo 8602 || echo 8601)'
# Images the faults commit; a release's `docker image prune` may have removed
# them already (they inherit the app's label), or a stopped <name>-previous may
# still use one: neither is an error.
FAULT_IMAGES = ("chainlit-fault:no-asyncpg", "chainlit-fault:no-auth", "chainlit-fault:persistence")


def app_container(name: str, image: str, port: str, options: str = "") -> str:
    """docker run of the app from the (edited) .env, published on the loopback at `port`."""
    return (
        f"docker run -d --name {name} --env-file {ENV} "
        f"--add-host host.docker.internal:host-gateway -p 127.0.0.1:{port}:8000 {options} {image}"
    )


def run_app(image: str = "$img", options: str = "", port: str = "$port") -> str:
    """Recreate the app's container by hand from the (edited) .env, as an
    operator following the original analysis would, on the serving slot port
    (nginx forwards there) unless told otherwise."""
    return f"{CAPTURE}docker rm -f chainlit >/dev/null && " + app_container(
        "chainlit", image, port, options
    )


def edited_image(change: str, tag: str) -> str:
    """Commit a copy of the running image with `change` made in it, and run it."""
    return (
        f"{CAPTURE}docker rm -f edit >/dev/null 2>&1; docker run --name edit -u root "
        f"$img sh -c '{change}' && docker commit "
        f"--change 'CMD {APP_CMD}' --change 'USER chainlit' edit {tag} >/dev/null "
        f"&& docker rm edit >/dev/null && " + run_app(tag)
    )


@dataclass
class Fault:
    finding: str
    inject: str
    # Real consequences troubleshoot may name too.
    also: set[str] = field(default_factory=set)
    # Findings that must all be named (default: just `finding`).
    required: set[str] = field(default_factory=set)
    restore: str = ""
    settle: str = ""
    troubleshoot_vars: dict[str, str] = field(default_factory=dict)


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
        # The migrations are recorded as applied: forget them so deploy reapplies.
        restore="sudo -u postgres psql -d chainlit -Xqc 'DELETE FROM chainlit_schema_migrations'",
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
    ),
    Fault(
        "obsolete_persistence_section",
        edited_image(
            'printf "[persistence]\\nenabled = true\\n" >> /app/.chainlit/config.toml',
            "chainlit-fault:persistence",
        ),
        also={"stale_image"},
    ),
    Fault("stale_image", "true", troubleshoot_vars={"troubleshoot_app_src": "EDITED_COPY"}),
    # nginx, the app's front, stopped: the deploy starts it again.
    Fault("proxy_down", "systemctl stop nginx"),
    # The container recreated by hand on the other slot: nginx answers 502.
    Fault("proxy_upstream_mismatch", run_app(port=OTHER_SLOT)),
    # A release interrupted before its switch; the deploy leaves it (no new release).
    Fault(
        "stale_next_container",
        CAPTURE + app_container("chainlit-next", "$img", OTHER_SLOT),
        restore="docker rm -f chainlit-next >/dev/null",
    ),
]

DIAGNOSED: dict[str, bool] = {}
FINDINGS_LINE = re.compile(r"(?:(\d+) findings?: ([a-z_, ]+)|no problem found)")


def findings(output: str) -> set[str]:
    matches = list(FINDINGS_LINE.finditer(output))
    assert matches, f"no findings line in the troubleshoot output:\n{output}"
    last = matches[-1]
    return set() if last.group(1) is None else {f.strip() for f in last.group(2).split(",")}


def test_deploy_then_verify_passes(run_playbook):
    result = run_playbook("verify_stack.yml")
    assert result.returncode == 0, result.stdout
    assert "7 of 7 checks passed" in result.stdout


def test_troubleshoot_finds_nothing_on_the_healthy_stack(run_playbook):
    result = run_playbook("troubleshoot_stack.yml", None, "--check")
    assert result.returncode == 0, result.stdout
    assert findings(result.stdout) == set()


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
    try:
        injected = host.run(fault.inject)
        assert injected.rc == 0, injected.stdout + injected.stderr
        if fault.settle:
            host.run(fault.settle)
        diagnosis = run_playbook("troubleshoot_stack.yml", extra or None)
        assert diagnosis.returncode == 0, diagnosis.stdout
        named = findings(diagnosis.stdout)
        required = fault.required or {fault.finding}
        DIAGNOSED[fault.finding] = required <= named and named <= required | fault.also
        assert required <= named, f"{fault.finding} not named; named {sorted(named)}"
        assert named <= required | fault.also, f"unexpected findings {sorted(named)}"
    finally:
        if fault.restore:
            host.run_expect([0], fault.restore)
        repair = run_playbook("converge.yml")
        assert repair.returncode == 0, repair.stdout
        for image in FAULT_IMAGES:
            host.run(f"docker rmi {image} >/dev/null 2>&1 || true")
    verified = run_playbook("verify_stack.yml")
    assert verified.returncode == 0, verified.stdout
    assert "7 of 7 checks passed" in verified.stdout


def test_every_injected_fault_was_diagnosed():
    diagnosed = sum(DIAGNOSED.values())
    summary = f"faults diagnosed / injected: {diagnosed} / {len(FAULTS)}"
    artifacts = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "fault-injection.txt").write_text(
        summary + "\n" + "".join(f"{k}: {'ok' if v else 'MISSED'}\n" for k, v in DIAGNOSED.items())
    )
    assert diagnosed == len(FAULTS), summary
