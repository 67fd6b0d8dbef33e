#!/usr/bin/python
"""Ansible module: everything troubleshoot reads about an app on its host, in one pass."""

from __future__ import annotations

import inspect
import json
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chainlit_deploy.stack.plugins.module_utils import image_probe
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.docker_cli import (
    engine_error,
    inspect_one,
    python_probe,
    run,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.evidence import (
    direct_url,
    image_label,
)

DOCUMENTATION = r"""
---
module: chainlit_app_facts
short_description: Read, in one pass, what troubleshoot needs to know of an app on its host
description:
  - Reads whether the Docker engine answers, the app's container, its image and its
    last log lines, a C(<name>-next) container, a probe of the image run with its own
    Python (asyncpg, Chainlit's version, auth callbacks, config.toml), nginx (installed,
    running, C(nginx -t), the app's site), the app's C(/health) through nginx and on its
    container's port, C(/auth/config), the app's C(.env), and PostgreSQL's service and
    clusters on this host.
  - Only reads; never fails on what it finds (an engine that is down, a missing
    container, nginx not installed are facts). The result holds the container's
    environment and the C(.env), so use it with C(no_log).
version_added: "1.0.0"
author: chainlit-deploy
attributes:
  check_mode:
    support: full
options:
  name:
    description: The app's serving container.
    type: str
    required: true
  next_name:
    description: The container of a release not switched to yet.
    type: str
    required: true
  app_url:
    description: The app's URL as this host reaches it (through nginx), with the root path.
    type: str
    required: true
  proxy_site:
    description: The app's nginx site.
    type: path
    required: true
  env_file:
    description: The app's C(.env).
    type: path
    required: true
  app_dir_in_image:
    description: Directory of the app's code in the image; empty takes the image's WORKDIR.
    type: str
    default: ""
  expected_image:
    description: The image the current source builds (C(<name>-app:<tag>)); empty skips it.
    type: str
    default: ""
  log_lines:
    description: Last lines of the container's log to read.
    type: int
    default: 200
  timeout:
    description: Seconds each probe may take.
    type: int
    default: 5
"""

EXAMPLES = r"""
- name: Read the app's facts
  chainlit_deploy.stack.chainlit_app_facts:
    name: chainlit
    next_name: chainlit-next
    app_url: http://127.0.0.1:8502
    proxy_site: /etc/nginx/conf.d/chainlit-deploy-chainlit.conf
    env_file: /opt/chainlit/.env
  register: app_facts
  no_log: true
"""

RETURN = r"""
facts:
  description: The facts, in the form troubleshoot's findings classifier reads them.
  returned: always
  type: dict
"""

NGINX = "/usr/sbin/nginx"
PG_LSCLUSTERS = "/usr/bin/pg_lsclusters"


def http_get(url: str, timeout: float) -> dict[str, Any]:
    """GET without any proxy: status (-1 when nothing answers), msg, the upstream
    nginx names, and the body when it is JSON."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=timeout) as resp:
            body = resp.read().decode("utf-8", "replace")
            status, msg, headers = resp.status, "OK", resp.headers
    except urllib.error.HTTPError as err:
        body = err.read().decode("utf-8", "replace")
        status, msg, headers = err.code, str(err.reason), err.headers
    except (OSError, urllib.error.URLError) as err:
        return {"url": url, "status": -1, "msg": str(err), "upstream": ""}
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    return {
        "url": url,
        "status": status,
        "msg": msg,
        "upstream": headers.get("X-Chainlit-Upstream", "") if headers else "",
        "json": data,
    }


def image_probe_result(
    container: dict[str, Any] | None, name: str, app_dir: str, timeout: float
) -> tuple[dict[str, Any] | None, str]:
    """The image probe, in the running container, else in a throw-away one
    without network; and why it could not run."""
    return python_probe(container, name, inspect.getsource(image_probe), [app_dir], timeout * 6)


def gather(params: dict[str, Any]) -> dict[str, Any]:
    timeout = float(params["timeout"])
    name = params["name"]
    facts: dict[str, Any] = {
        "container_name": name,
        "env_file": params["env_file"],
        "engine_error": "",
        "container": None,
        "next_container": None,
        "probe": None,
        "probe_error": "",
        "logs": "",
        "running_image": "",
        "running_image_id": "",
        "image_name": "the image",
        "expected_image": params["expected_image"],
        "expected_image_present": False,
        "expected_image_id": "",
        "direct_health": {},
    }
    env_path = Path(params["env_file"])
    try:
        facts["env_text"], facts["env_error"] = env_path.read_text(), ""
    except OSError as exc:
        facts["env_text"], facts["env_error"] = None, f"{type(exc).__name__}: {exc}"

    facts["engine_error"] = engine_error(timeout * 2)
    if not facts["engine_error"]:
        container = inspect_one(["container"], name, timeout)
        facts["container"] = container
        facts["next_container"] = inspect_one(["container"], params["next_name"], timeout)
        if container:
            image = inspect_one(["image"], container["Image"], timeout) or {}
            app_dir = (
                params["app_dir_in_image"]
                or (image.get("Config") or {}).get("WorkingDir")
                or "/app"
            )
            facts["running_image"] = image_label(container, image.get("RepoTags"), name)
            facts["running_image_id"] = container.get("Image", "")
            facts["image_name"] = facts["running_image"] or "the image"
            _, out, err = run(
                ["docker", "logs", "--tail", str(params["log_lines"]), name], timeout * 2
            )
            facts["logs"] = f"{out}\n{err}"
            facts["probe"], facts["probe_error"] = image_probe_result(
                container, name, app_dir, timeout
            )
        if params["expected_image"]:
            expected = inspect_one(["image"], params["expected_image"], timeout)
            facts["expected_image_present"] = expected is not None
            facts["expected_image_id"] = (expected or {}).get("Id", "")

    nginx = Path(NGINX).exists()
    _, service, _ = run(["systemctl", "is-active", "nginx"], timeout) if nginx else (0, "", "")
    rc, _, config_test = run([NGINX, "-t"], timeout) if nginx else (0, "", "")
    try:
        site, site_error = Path(params["proxy_site"]).read_text(), ""
    except OSError as exc:
        site, site_error = None, f"{type(exc).__name__}: {exc}"
    facts["proxy"] = {
        "installed": nginx,
        "service": service.strip(),
        "config_ok": rc == 0,
        "config_test": config_test,
        "site_file": params["proxy_site"],
        "site": site,
        "site_error": site_error,
    }

    app_url = params["app_url"].rstrip("/")
    health = http_get(f"{app_url}/health", timeout)
    facts["health"] = {k: health[k] for k in ("url", "status", "msg", "upstream")}
    direct = direct_url(facts["container"], app_url)
    if direct:
        answer = http_get(f"{direct}/health", timeout)
        facts["direct_health"] = {k: answer[k] for k in ("url", "status", "msg")}
    answering = (
        app_url
        if health["status"] == 200
        else direct
        if facts["direct_health"].get("status") == 200
        else ""
    )
    auth = http_get(f"{answering}/auth/config", timeout) if answering else {}
    facts["auth_config"] = auth.get("json") if auth.get("status") == 200 else None
    facts["answering_url"] = answering

    if Path(PG_LSCLUSTERS).exists():
        _, pg_service, _ = run(["systemctl", "is-active", "postgresql"], timeout)
        rc, clusters, _ = run([PG_LSCLUSTERS, "--no-header"], timeout)
        facts["pg_service"] = pg_service.strip()
        facts["pg_clusters"] = clusters if rc == 0 else None
    else:
        facts["pg_service"], facts["pg_clusters"] = "", None
    return facts


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "name": {"type": "str", "required": True},
            "next_name": {"type": "str", "required": True},
            "app_url": {"type": "str", "required": True},
            "proxy_site": {"type": "path", "required": True},
            "env_file": {"type": "path", "required": True},
            "app_dir_in_image": {"type": "str", "default": ""},
            "expected_image": {"type": "str", "default": ""},
            "log_lines": {"type": "int", "default": 200},
            "timeout": {"type": "int", "default": 5},
        },
        supports_check_mode=True,
    )
    module.exit_json(changed=False, facts=gather(module.params))


if __name__ == "__main__":
    main()
