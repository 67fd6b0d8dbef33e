#!/usr/bin/python
"""Ansible module: the release contract of a Chainlit app deployed on this host."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chainlit_deploy.stack.plugins.module_utils import host_ports, release
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings import evidence

DOCUMENTATION = r"""
---
module: chainlit_release_info
short_description: The names and paths of a Chainlit app deployed on this host
description:
  - Reads the release contract the chainlit_app role recorded for an app in
    C(/etc/chainlit-deploy/<name>.json), that is its serving, next and previous
    container names, image repository, nginx site, C(.env) path, the URL the
    host reaches it at, and what the last release recorded.
  - Without O(name), takes the only app recorded on the host. Without any
    record, returns the contract of an app deployed with the role's defaults
    and RV(deployed=false).
  - Read-only; runs in check mode.
version_added: "1.0.0"
author: chainlit-deploy
attributes:
  check_mode:
    support: full
options:
  name:
    description: The app (chainlit_app_name). Empty takes the only app recorded on the host.
    type: str
    default: ""
  ports:
    description:
      - Also report which TCP ports the host listens on, whether the app's nginx
        site exists and which host ports its serving container publishes, so
        that a play can tell the app's own ports from ports another service
        holds, in one call.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Find the app's names and paths
  chainlit_deploy.stack.chainlit_release_info:
  register: app

- name: Inspect its serving container
  community.docker.docker_container_info:
    name: "{{ app.release.containers.serving }}"
"""

RETURN = r"""
release:
  description: The contract (see plugins/module_utils/release.py).
  returned: always
  type: dict
deployed:
  description: Whether the chainlit_app role recorded this app on the host.
  returned: always
  type: bool
apps:
  description: Every app recorded on the host.
  returned: always
  type: list
  elements: str
ports:
  description:
    - C(listening), the TCP ports in LISTEN state (IPv4 and IPv6);
      C(site_exists), whether the app's nginx site is on the host;
      C(serving), the host ports the serving container publishes (empty
      without Docker or without the container).
  returned: when O(ports=true)
  type: dict
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "default": ""},
            "ports": {"type": "bool", "default": False},
        },
        supports_check_mode=True,
    )
    directory = Path(release.MANIFEST_DIR)
    apps = sorted(p.stem for p in directory.glob("*.json")) if directory.is_dir() else []
    name = module.params["name"]
    if not name:
        if len(apps) > 1:
            module.fail_json(
                msg=f"several apps are deployed on this host ({', '.join(apps)}): name the one "
                "to use (verify_app_name, troubleshoot_app_name or chainlit_app_name).",
                apps=apps,
            )
        name = apps[0] if apps else "chainlit"
    if not release.NAME_PATTERN.match(name):
        module.fail_json(msg=f"'{name}' is not an app name (lower-case letters, digits, _ . -)")
    manifest = Path(release.manifest_path(name))
    result: dict[str, Any] = {"changed": False, "apps": apps, "deployed": manifest.is_file()}
    try:
        result["release"] = (
            release.from_manifest(manifest.read_text())
            if result["deployed"]
            else release.contract(name=name)
        )
    except (OSError, ValueError, KeyError) as error:
        module.fail_json(msg=f"cannot read {manifest}: {error}", **result)
    if module.params["ports"]:
        result["ports"] = {
            "listening": host_ports.read_listening_ports(),
            "site_exists": Path(result["release"]["nginx_site"]).exists(),
            "serving": serving_ports(module, result["release"]["containers"]["serving"]),
        }
    module.exit_json(**result)


def serving_ports(module: AnsibleModule, container: str) -> list[int]:
    """Host ports the container publishes; none without Docker or the container.
    The inspect output holds the container's environment: only ports leave here."""
    docker = module.get_bin_path("docker")
    if not docker:
        return []
    rc, out, _ = module.run_command([docker, "inspect", container])
    if rc != 0:
        return []
    found = (json.loads(out or "[]") or [{}])[0]
    return sorted({int(binding["port"]) for binding in evidence.published(found)})


if __name__ == "__main__":
    main()
