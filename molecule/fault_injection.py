"""Fault injection into a running deployment, shared by the whole-stack
scenarios (default, faults): inject a fault the way real operations make it,
prove chats really break (verify fails), that troubleshoot names it with the
right id, that the deploy playbook heals it (or refuses it clearly), and that
verify passes again.

A deploy is the dear part (about a minute on two busy cores). A fault with an
``undo`` (its exact inverse, as a DBA would type it) is therefore undone by
hand once troubleshoot has named it; then ``heal_together`` injects every such
fault of the scenario at once, and one deploy must heal them all before verify
passes: each fault is still in place when that deploy runs."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ENV = "/opt/chainlit/.env"
APP_CMD = '["chainlit", "run", "app.py", "--headless", "--host", "0.0.0.0", "--port", "8000"]'
# The serving container's image and slot port (nginx forwards to it), read
# before the container is replaced.
CAPTURE = (
    "img=$(docker inspect -f '{{.Config.Image}}' chainlit) && "
    "port=$(docker inspect -f '{{range .HostConfig.PortBindings}}{{(index . 0).HostPort}}{{end}}'"
    " chainlit) && "
)
# The app's Docker network (role docker's docker_app_network).
APP_NETWORK = "chainlit"
# The slot port the serving container does not use (chainlit_app_slot_ports).
OTHER_SLOT = '$(test "$port" = 8601 && echo 8602 || echo 8601)'
# Images the faults commit; a release's `docker image prune` may have removed
# them already (they inherit the app's label), or a stopped <name>-previous may
# still use one: neither is an error.
FAULT_IMAGES = ("chainlit-fault:no-asyncpg", "chainlit-fault:no-auth", "chainlit-fault:persistence")


def app_container(
    name: str, image: str, port: str, options: str = "", network: str = APP_NETWORK
) -> str:
    """docker run of the app from the (edited) .env, published on the loopback at
    `port`, on the app's network as the role runs it (PostgreSQL admits no other)
    unless told otherwise."""
    return (
        f"docker run -d --name {name} --env-file {ENV} --network {network} "
        f"--add-host host.docker.internal:host-gateway -p 127.0.0.1:{port}:8000 {options} {image}"
    )


def run_app(
    image: str = "$img", options: str = "", port: str = "$port", network: str = APP_NETWORK
) -> str:
    """Recreate the app's container by hand from the (edited) .env, as an
    operator following the original analysis would, on the serving slot port
    (nginx forwards there) unless told otherwise."""
    return f"{CAPTURE}docker rm -f chainlit >/dev/null && " + app_container(
        "chainlit", image, port, options, network
    )


def edited_image(change: str, tag: str) -> str:
    """Commit a copy of the running image with `change` made in it, and run it."""
    return (
        f"{CAPTURE}docker rm -f edit >/dev/null 2>&1; docker run --name edit -u root "
        f"$img sh -c '{change}' && docker commit "
        f"--change 'CMD {APP_CMD}' --change 'USER chainlit' edit {tag} >/dev/null "
        f"&& docker rm edit >/dev/null && " + run_app(tag)
    )


# Until the app answers on its slot port ($port), at most a minute.
HEALTH = (
    'python3 -c "import urllib.request as u; '
    "u.urlopen('http://127.0.0.1:$port/health', timeout=2)\""
)
WAIT_APP = f"for i in $(seq 60); do {HEALTH} 2>/dev/null && break; sleep 1; done && {HEALTH}"
# A fault of the app's container is undone by hand: SAVE_APP (first in its
# inject) keeps the .env, the serving image and slot port; UNDO_APP puts them
# back in a container made by hand, as the fault was, and waits until it answers.
SAVE_APP = (
    CAPTURE + f"cp {ENV} /tmp/env.orig && echo $img > /tmp/img.orig && echo $port > /tmp/port.orig"
)
UNDO_APP = (
    f"cp /tmp/env.orig {ENV} && img=$(cat /tmp/img.orig) && port=$(cat /tmp/port.orig) "
    "&& docker rm -f chainlit >/dev/null && "
    + app_container("chainlit", "$img", "$port")
    + " >/dev/null && "
    + WAIT_APP
)


PSQL = "sudo -u postgres psql -XqAt"
# New sessions only see role and database changes: end the app's open ones.
END_APP_SESSIONS = (
    f'{PSQL} -c "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity '
    "WHERE usename = 'chainlit' AND pid <> pg_backend_pid()\" >/dev/null"
)


@dataclass
class Fault:
    finding: str
    inject: str
    # The test's id when two faults share a finding (default: the finding).
    name: str = ""
    # Real consequences troubleshoot may name too.
    also: set[str] = field(default_factory=set)
    # Findings that must all be named (default: just `finding`).
    required: set[str] = field(default_factory=set)
    settle: str = ""
    troubleshoot_vars: dict[str, str] = field(default_factory=dict)
    # Whether chats stop working while the fault is in place (verify fails).
    breaks_chats: bool = True
    # The fault's exact inverse: with one, the fault is undone by hand after
    # its diagnosis, and heal_together proves the deploy's repair.
    undo: str = ""
    # Whether heal_together injects it with the others (not when it would
    # collide with another fault, such as two containers on one slot port).
    together: bool = True


# Printed by diagnose_stack.yml when its verify failed.
VERIFY_FAILED = "FAULT-TEST verify failed"
FINDINGS_LINE = re.compile(r"(?:(\d+) findings?: ([a-z_, ]+)|no problem found)")


def findings(output: str) -> set[str]:
    matches = list(FINDINGS_LINE.finditer(output))
    assert matches, f"no findings line in the troubleshoot output:\n{output}"
    last = matches[-1]
    return set() if last.group(1) is None else {f.strip() for f in last.group(2).split(",")}


def inject_diagnose_repair(host: Any, run_playbook: Any, fault: Fault, extra: dict) -> bool:
    """The whole pass for one fault; returns whether troubleshoot named it
    exactly. Fails the test on any broken promise."""
    named_right = False
    try:
        injected = host.run(fault.inject)
        assert injected.rc == 0, injected.stdout + injected.stderr
        if fault.settle:
            host.run(fault.settle)
        if fault.breaks_chats:
            # Verify, then troubleshoot, in one run (diagnose_stack.yml). A
            # healthy app saves and lists the probe's chat within a second or
            # two: ten seconds is long enough to call it broken.
            diagnosis = run_playbook("diagnose_stack.yml", {"verify_timeout": 10, **extra})
            assert VERIFY_FAILED in diagnosis.stdout, (
                f"{fault.finding}: verify passed with the fault in place\n{diagnosis.stdout}"
            )
        else:
            diagnosis = run_playbook("troubleshoot_stack.yml", extra or None)
        assert diagnosis.returncode == 0, diagnosis.stdout
        named = findings(diagnosis.stdout)
        required = fault.required or {fault.finding}
        named_right = required <= named and named <= required | fault.also
        assert required <= named, f"{fault.finding} not named; named {sorted(named)}"
        assert named <= required | fault.also, f"unexpected findings {sorted(named)}"
    finally:
        if fault.undo:
            host.run_expect([0], fault.undo)
        else:
            repair_and_verify(host, run_playbook)
    return named_right


def repair_and_verify(host: Any, run_playbook: Any) -> None:
    """The deploy heals what is injected; verify passes afterwards."""
    repair = run_playbook("converge.yml")
    assert repair.returncode == 0, repair.stdout
    for image in FAULT_IMAGES:
        host.run(f"docker rmi {image} >/dev/null 2>&1 || true")
    # A repair that released the app ran verify itself (deploy rolls back
    # when it fails); otherwise verify runs now.
    if "10 of 10 checks passed" not in " ".join(repair.stdout.split()):
        verified = run_playbook("verify_stack.yml")
        assert verified.returncode == 0, verified.stdout
        assert "10 of 10 checks passed" in " ".join(verified.stdout.split())


def heal_together(host: Any, run_playbook: Any, faults: list[Fault]) -> None:
    """Every fault with an undo, injected again at once: chats break,
    troubleshoot does not crash on so many at once, one deploy heals them all
    and verify passes."""
    batch = [fault for fault in faults if fault.undo and fault.together]
    assert batch, "no fault here is undone by hand"
    try:
        for fault in batch:
            injected = host.run(fault.inject)
            assert injected.rc == 0, f"{fault.finding}: {injected.stdout}{injected.stderr}"
            if fault.settle:
                host.run(fault.settle)
        diagnosis = run_playbook("diagnose_stack.yml", {"verify_timeout": 10})
        assert VERIFY_FAILED in diagnosis.stdout, "verify passed with every fault in place"
        assert diagnosis.returncode == 0, diagnosis.stdout
        assert findings(diagnosis.stdout), "troubleshoot found nothing with every fault in place"
    finally:
        repair_and_verify(host, run_playbook)


def fault_id(fault: Fault) -> str:
    return fault.name or fault.finding


def record(scenario: str, diagnosed: dict[str, bool], total: int) -> str:
    """Write artifacts/fault-injection-<scenario>.txt; return its summary line."""
    count = sum(diagnosed.values())
    summary = f"{scenario}: faults diagnosed / injected: {count} / {total}"
    artifacts = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"]) / "artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / f"fault-injection-{scenario}.txt").write_text(
        summary + "\n" + "".join(f"{k}: {'ok' if v else 'MISSED'}\n" for k, v in diagnosed.items())
    )
    return summary
