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
  containers:
    description:
      - Also report the app's serving, next and previous containers in the shape
        of community.docker.docker_container_info (C(exists), C(container)),
        holding only what a release decides on - ID, image, state, labels and
        published ports, never the environment - in one C(docker inspect).
    type: bool
    default: false
  image:
    description:
      - Also report whether the host has this image, in the shape of
        community.docker.docker_image_info (C(images), a list of C(Id)).
    type: str
    default: ""
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
containers:
  description:
    - C(serving), C(next) and C(previous), each C(exists) and C(container)
      (C(Id), C(Name), C(Image), C(State.Running), C(State.Status),
      C(Config.Labels), C(HostConfig.PortBindings), C(NetworkSettings.Ports));
      C(container) is empty when it does not exist or there is no Docker.
  returned: when O(containers=true)
  type: dict
image:
  description:
    - C(name) and C(images), the list of C({Id}) of O(image) on the host (empty when absent).
  returned: when O(image) is given
  type: dict
"""


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "default": ""},
            "ports": {"type": "bool", "default": False},
            "containers": {"type": "bool", "default": False},
            "image": {"type": "str", "default": ""},
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
    names = result["release"]["containers"]
    docker = module.get_bin_path("docker")
    containers = (
        container_states(module, docker, names)
        if module.params["containers"] or module.params["ports"]
        else {}
    )
    if module.params["containers"]:
        result["containers"] = containers
    if module.params["ports"]:
        result["ports"] = {
            "listening": host_ports.read_listening_ports(),
            "site_exists": Path(result["release"]["nginx_site"]).exists(),
            "serving": sorted(
                {
                    int(binding["port"])
                    for binding in evidence.published(containers["serving"]["container"])
                }
            ),
        }
    if module.params["image"]:
        result["image"] = {
            "name": module.params["image"],
            "images": image_ids(module, docker, module.params["image"]),
        }
    module.exit_json(**result)


def container_states(
    module: AnsibleModule, docker: str | None, names: dict[str, str]
) -> dict[str, dict[str, Any]]:
    """The containers of names ({serving: name, ...}) in one docker inspect, each
    {exists, container} with only what a release decides on (sanitize)."""
    found: list[dict[str, Any]] = []
    if docker:
        # Exit code 1 when any is missing; the others are printed all the same.
        _, out, _ = module.run_command([docker, "container", "inspect", *names.values()])
        try:
            found = json.loads(out or "[]") or []
        except ValueError:
            found = []
    return by_name(found, names)


def by_name(found: list[dict[str, Any]], names: dict[str, str]) -> dict[str, dict[str, Any]]:
    """{role: {exists, container}} for names ({role: container name}) among found
    (docker inspect's output)."""
    named = {str(item.get("Name", "")).lstrip("/"): item for item in found}
    return {
        role: {"exists": name in named, "container": sanitize(named.get(name))}
        for role, name in names.items()
    }


def sanitize(container: dict[str, Any] | None) -> dict[str, Any]:
    """What a release decides on; never the environment, which holds the secrets."""
    if not container:
        return {}
    state = container.get("State") or {}
    return {
        "Id": container.get("Id", ""),
        "Name": str(container.get("Name", "")).lstrip("/"),
        "Image": container.get("Image", ""),
        "State": {"Running": bool(state.get("Running")), "Status": state.get("Status", "")},
        "Config": {"Labels": (container.get("Config") or {}).get("Labels") or {}},
        "HostConfig": {
            "PortBindings": (container.get("HostConfig") or {}).get("PortBindings") or {}
        },
        "NetworkSettings": {"Ports": (container.get("NetworkSettings") or {}).get("Ports") or {}},
    }


def image_ids(module: AnsibleModule, docker: str | None, image: str) -> list[dict[str, str]]:
    """[{Id}] of the image on the host; [] when it is absent or there is no Docker."""
    if not docker:
        return []
    rc, out, _ = module.run_command([docker, "image", "inspect", "--format", "{{.Id}}", image])
    return [{"Id": line} for line in out.split() if line] if rc == 0 else []


if __name__ == "__main__":
    main()
