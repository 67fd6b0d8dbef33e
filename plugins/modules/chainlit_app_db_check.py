#!/usr/bin/python
"""Ansible module: check the app's database from inside the app's container."""

from __future__ import annotations

import inspect
import json
import subprocess
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chainlit_deploy.stack.plugins.module_utils import app_db_probe
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings import (  # noqa: F401
    classify,  # registers every concern's catalogue entries
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.app_database import (
    assess,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.catalogue import make

DOCUMENTATION = r"""
---
module: chainlit_app_db_check
short_description: Check the app's database from the app's own side, inside its container
description:
  - Runs a probe with the image's own Python and asyncpg inside the app's container
    (C(docker exec)), with the container's own C(DATABASE_URL), exactly as Chainlit's
    data layer connects. It connects, reads every Chainlit table, and writes one chat's
    rows (a user, a thread, each kind of step, an element, feedback) in a transaction
    that is rolled back, so nothing persists.
  - Whatever PostgreSQL or the network answers (SQLSTATE, exception) is named as a
    finding of the troubleshoot catalogue, with its cause and fix.
  - Never fails on what it finds (RV(ok) says); fails only on bad arguments.
  - No message it returns holds the database password.
version_added: "1.0.0"
author: chainlit-deploy
attributes:
  check_mode:
    support: full
    description: It only reads; the write it tries is rolled back.
options:
  container:
    description: The running container to check (the app's, or a new release's before it serves).
    type: str
    required: true
  timeout:
    description: Seconds for the connection (asyncpg waits 60 by default).
    type: int
    default: 10
"""

EXAMPLES = r"""
- name: The new release reaches its database as the app does
  chainlit_deploy.stack.chainlit_app_db_check:
    container: chainlit-next
  register: db_check

- name: Refuse it otherwise
  ansible.builtin.assert:
    that: db_check.ok
    fail_msg: "{{ db_check.findings | map(attribute='finding') | join('; ') }}"
"""

RETURN = r"""
ok:
  description: The app's connection connects, reads every table and writes a chat (rolled back).
  returned: always
  type: bool
probe:
  description:
    - What the probe saw (connect, session settings, each table, the write), errors with SQLSTATE.
  returned: always
  type: dict
findings:
  description: Catalogue findings (id, finding, cause, fix) for what failed.
  returned: always
  type: list
  elements: dict
summary:
  description: One line saying what passed or what failed first.
  returned: always
  type: str
"""


def run_probe(container: str, timeout: int) -> dict[str, Any]:
    """The probe's JSON, or {"exec_error": ...} when it could not run."""
    source = inspect.getsource(app_db_probe)
    options = json.dumps({"timeout": timeout})
    last = ""
    for python in ("python", "python3"):
        try:
            done = subprocess.run(
                ["docker", "exec", "-i", container, python, "-", options],
                input=source,
                capture_output=True,
                text=True,
                timeout=timeout * 3 + 30,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            return {"exec_error": f"{type(exc).__name__}: {exc}"}
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode == 0 and lines:
            return json.loads(lines[-1])
        last = (done.stderr or done.stdout).strip().splitlines()[-1:] or [f"exit {done.returncode}"]
        last = last[0]
        if done.returncode not in (126, 127):  # not "no such executable": do not retry
            break
    return {"exec_error": last[:300]}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "container": {"type": "str", "required": True},
            "timeout": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    container = module.params["container"]
    probe = run_probe(container, module.params["timeout"])
    ok, raw, summary = assess(probe, container)
    findings = [make(item["id"], item["finding"], name=container) for item in raw]
    module.exit_json(changed=False, ok=ok, probe=probe, findings=findings, summary=summary)


if __name__ == "__main__":
    main()
