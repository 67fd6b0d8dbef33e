#!/usr/bin/python
"""Ansible module: the state of files, systemd units and packages, in one call."""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat
import subprocess
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
---
module: chainlit_host_state
short_description: The state of files, systemd units and packages, in one call
description:
  - Reads, in one module run, what a role would otherwise read with a task
    each (or learn only by running a task that writes), that is whether paths
    exist with their owner, group, mode and the SHA-1 of a regular file's
    content; whether systemd units are active and enabled; dpkg's status of
    packages.
  - A role compares that with what it would write and skips the tasks that
    would change nothing, so a deploy that changes nothing runs fewer tasks on
    the host. A file's content is never returned, only its SHA-1, so files
    holding secrets may be named.
  - Read-only; runs in check mode.
version_added: "1.1.0"
author: chainlit-deploy
attributes:
  check_mode:
    support: full
options:
  paths:
    description: Paths to look at (not followed when a symbolic link).
    type: list
    elements: path
    default: []
  units:
    description: systemd units to ask about.
    type: list
    elements: str
    default: []
  packages:
    description: Debian packages whose dpkg status to read.
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Read the engine's configuration and service in one call
  chainlit_deploy.stack.chainlit_host_state:
    paths: [/etc/docker, /etc/docker/daemon.json]
    units: [docker]
    packages: [docker.io]
  register: state

- name: Write daemon.json only when it differs
  ansible.builtin.template:
    src: daemon.json.j2
    dest: /etc/docker/daemon.json
    mode: "0644"
  when: >-
    state.paths['/etc/docker/daemon.json'].checksum
    != lookup('ansible.builtin.template', 'daemon.json.j2') | hash('sha1')
"""

RETURN = r"""
paths:
  description:
    - Per path, C(exists), C(type) (file, directory, link, other or absent),
      C(owner), C(group), C(mode) (four octal digits, as a task gives it) and
      C(checksum) (SHA-1 of a regular file's content, else empty).
  returned: always
  type: dict
units:
  description:
    - Per unit, C(active) and C(enabled) as systemctl says them (C(unknown)
      without systemctl).
  returned: always
  type: dict
packages:
  description:
    - Per package, dpkg's status abbreviation (C(ii) when installed), or an
      empty string when dpkg does not know it.
  returned: always
  type: dict
"""


ABSENT = {"exists": False, "type": "absent", "owner": "", "group": "", "mode": "", "checksum": ""}


def path_state(path: str) -> dict[str, Any]:
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return dict(ABSENT)
    kind = (
        "file"
        if stat.S_ISREG(info.st_mode)
        else "directory"
        if stat.S_ISDIR(info.st_mode)
        else "link"
        if stat.S_ISLNK(info.st_mode)
        else "other"
    )
    checksum = ""
    if kind == "file":
        # SHA-1 as Ansible's hash('sha1') on the controller gives it.
        digest = hashlib.sha1()
        with Path(path).open("rb") as handle:
            for block in iter(lambda: handle.read(65536), b""):
                digest.update(block)
        checksum = digest.hexdigest()
    return {
        "exists": True,
        "type": kind,
        "owner": name_of(pwd.getpwuid, info.st_uid),
        "group": name_of(grp.getgrgid, info.st_gid),
        "mode": f"{stat.S_IMODE(info.st_mode):04o}",
        "checksum": checksum,
    }


def name_of(lookup: Any, number: int) -> str:
    try:
        return str(lookup(number)[0])
    except KeyError:
        return str(number)


def systemctl(verb: str, unit: str) -> str:
    """What `systemctl <verb> <unit>` prints; 'unknown' when it cannot answer."""
    try:
        done = subprocess.run(
            ["systemctl", verb, "--", unit], capture_output=True, text=True, check=False, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown"


def unit_states(units: list[str]) -> dict[str, dict[str, str]]:
    return {
        unit: {"active": systemctl("is-active", unit), "enabled": systemctl("is-enabled", unit)}
        for unit in units
    }


def package_states(packages: list[str]) -> dict[str, str]:
    states = dict.fromkeys(packages, "")
    if not packages:
        return states
    try:
        done = subprocess.run(
            ["dpkg-query", "--show", "--showformat=${Package} ${db:Status-Abbrev}\n", *packages],
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return states
    for line in done.stdout.splitlines():
        name, _, status = line.partition(" ")
        # Multi-arch names come back as name:arch.
        name = name if name in states else name.split(":")[0]
        if name in states:
            states[name] = status.strip()
    return states


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "paths": {"type": "list", "elements": "path", "default": []},
            "units": {"type": "list", "elements": "str", "default": []},
            "packages": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    module.exit_json(
        changed=False,
        paths={path: path_state(path) for path in module.params["paths"]},
        units=unit_states(module.params["units"]),
        packages=package_states(module.params["packages"]),
    )


if __name__ == "__main__":
    main()
