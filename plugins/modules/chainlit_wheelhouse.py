#!/usr/bin/python
"""Ansible module: a directory of wheels for an app's requirements and a target Python."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chainlit_deploy.stack.plugins.module_utils import wheelhouse

DOCUMENTATION = r"""
---
module: chainlit_wheelhouse
short_description: Make a wheelhouse of an app's requirements for the image's Python
description:
  - Resolves O(requirements) with the pip of the Python running the module
    (its index, CA bundle and proxy settings), then fetches every pinned
    distribution as a wheel for O(python_version) and O(platforms) into O(dest).
    A distribution PyPI has only as source is built into a wheel, which must
    be pure Python; one that needs compiling for the target is refused, named.
  - An image then installs from the wheelhouse with C(pip install --no-index),
    so the build needs no package index (role chainlit_app, chainlit_app_wheelhouse).
  - Idempotent. O(dest) records what it was made for (C(.wheelhouse.json)) and is
    replaced, whole, only when the resolution or the target changes.
  - Run it on the controller (C(delegate_to=localhost)), where the role reads
    the wheelhouse from.
version_added: "1.0.0"
author: chainlit-deploy
attributes:
  check_mode:
    support: full
    description: Resolves, and reports whether the wheelhouse would change, without downloading.
options:
  requirements:
    description: The requirements, as a requirements.txt holds them.
    type: str
    required: true
  dest:
    description: Directory of the wheelhouse (created; its contents are replaced).
    type: path
    required: true
  python_version:
    description: Python of the image, C(major.minor) (C(3.12) for python:3.12-slim).
    type: str
    default: "3.12"
  platforms:
    description: Wheel platform tags the image accepts, in pip's C(--platform) form.
    type: list
    elements: str
    default: [manylinux_2_28_x86_64, manylinux_2_17_x86_64, manylinux2014_x86_64, linux_x86_64]
"""

EXAMPLES = r"""
- name: Make the app's wheelhouse on the controller
  chainlit_deploy.stack.chainlit_wheelhouse:
    requirements: "{{ lookup('ansible.builtin.file', 'app/requirements.txt') }}\nasyncpg==0.32.0"
    dest: "{{ inventory_dir }}/wheelhouse"
    python_version: "3.12"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
pins:
  description: The resolved distributions.
  returned: always
  type: list
  elements: str
wheels:
  description: The wheel files of the wheelhouse.
  returned: unless check mode would change it
  type: list
  elements: str
digest:
  description: What the wheelhouse was made for (pins and target), 16 hex digits.
  returned: always
  type: str
built_from_source:
  description: Distributions built into wheels from their source.
  returned: when downloaded
  type: list
  elements: str
"""


def pip(module: AnsibleModule, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True)


def resolve(module: AnsibleModule, requirements: Path, work: Path) -> dict:
    """pip's installation report of the requirements."""
    report = work / "report.json"
    done = pip(
        module, "install", "--dry-run", "--ignore-installed", "--quiet",
        "--disable-pip-version-check", "--report", str(report), "-r", str(requirements),
    )  # fmt: skip
    if done.returncode != 0:
        module.fail_json(msg="pip cannot resolve the requirements", stderr=done.stderr[-3000:])
    return json.loads(report.read_text())


def fetch_wheels(module: AnsibleModule, pins: list[str], into: Path) -> list[str]:
    """Download the pins' wheels for the target; return the pins PyPI has no
    wheel of (pip stops at the first such pin: it runs again without it)."""
    params = module.params
    wanted, missing_all = list(pins), []
    while wanted:
        done = subprocess.run(
            wheelhouse.download_wheels_command(
                sys.executable, wanted, into, params["python_version"], params["platforms"]
            ),
            capture_output=True,
            text=True,
        )
        if done.returncode == 0:
            break
        missing = [pin for pin in wheelhouse.pins_without_wheel(done.stderr) if pin in wanted]
        if not missing:
            module.fail_json(msg="pip cannot download the wheels", stderr=done.stderr[-3000:])
        missing_all += missing
        wanted = [pin for pin in wanted if pin not in missing]
    return missing_all


def download(module: AnsibleModule, pins: list[str], into: Path, first: list[str]) -> list[str]:
    """Fetch the wheels, the pins in ``first`` (resolved to a source
    distribution) on their own before the others; build the pure-Python ones
    PyPI has only as source."""
    params = module.params
    from_source: list[str] = []
    for group in ([p for p in pins if p in first], [p for p in pins if p not in first]):
        from_source += fetch_wheels(module, group, into)
    if from_source:
        sources = into.parent / "sources"
        done = pip(module, "wheel", "--no-deps", "--wheel-dir", str(sources), *from_source)
        if done.returncode != 0:
            module.fail_json(
                msg=f"cannot build wheels of {', '.join(from_source)}", stderr=done.stderr[-3000:]
            )
        native = [w.name for w in sources.glob("*.whl") if not wheelhouse.is_pure(w.name)]
        if native:
            module.fail_json(
                msg=f"{', '.join(native)} need compiling for the target and PyPI has no wheel "
                f"for Python {params['python_version']} on {', '.join(params['platforms'])}: "
                "make the wheelhouse on a machine with the image's Python and platform",
            )
        for wheel in sources.glob("*.whl"):
            shutil.move(str(wheel), into / wheel.name)
    return from_source


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "requirements": {"type": "str", "required": True},
            "dest": {"type": "path", "required": True},
            "python_version": {"type": "str", "default": "3.12"},
            "platforms": {
                "type": "list",
                "elements": "str",
                "default": [
                    "manylinux_2_28_x86_64",
                    "manylinux_2_17_x86_64",
                    "manylinux2014_x86_64",
                    "linux_x86_64",
                ],
            },
        },
        supports_check_mode=True,
    )
    params = module.params
    dest = Path(params["dest"])
    with tempfile.TemporaryDirectory(prefix="chainlit-wheelhouse-") as tmp:
        work = Path(tmp)
        requirements = work / "requirements.txt"
        requirements.write_text(params["requirements"] + "\n")
        report = resolve(module, requirements, work)
        pins = wheelhouse.pins_from_report(report)
        wanted = wheelhouse.digest(pins, params["python_version"], params["platforms"])
        result: dict[str, Any] = {"pins": pins, "digest": wanted}
        if wheelhouse.is_current(dest, wanted):
            module.exit_json(
                changed=False, wheels=wheelhouse.read_manifest(dest)["wheels"], **result
            )
        if module.check_mode:
            module.exit_json(changed=True, **result)
        into = work / "wheels"
        into.mkdir()
        result["built_from_source"] = download(
            module, pins, into, wheelhouse.source_only_pins(report)
        )
        wheels = sorted(p.name for p in into.glob("*.whl"))
        (into / wheelhouse.MANIFEST).write_text(
            json.dumps(
                {
                    "digest": wanted,
                    "pins": pins,
                    "python": params["python_version"],
                    "platforms": params["platforms"],
                    "wheels": wheels,
                },
                indent=2,
            )
        )
        # Replace the directory whole: a half-made wheelhouse is never left.
        staging = dest.with_name(dest.name + ".new")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(into, staging)
        shutil.rmtree(dest, ignore_errors=True)
        staging.rename(dest)
    module.exit_json(changed=True, wheels=wheels, **result)


if __name__ == "__main__":
    main()
