#!/usr/bin/python
"""Ansible module: read a Chainlit deployment this collection did not make (a
Docker Compose project or a plain container), for troubleshoot."""

from __future__ import annotations

import inspect
import json
import os
import re
from pathlib import Path
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chainlit_deploy.stack.plugins.module_utils import (
    database_url,
    dotenv,
    image_probe,
)
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.docker_cli import (
    engine_error,
    inspect_one,
    last_line,
    python_probe,
    run,
)

DOCUMENTATION = r"""
---
module: chainlit_compose_facts
short_description: Read a Chainlit deployment made with Docker Compose, or a plain container
description:
  - Finds a Docker Compose project by its directory or its name (or a container by its
    name), and reads what troubleshoot needs to name the faults of a Chainlit deployment
    it did not make. The compose file (its lines naming the database variable), the
    compose configuration as C(docker compose config) resolves it, each service's
    container and image (the database's mounts among them), and the app's
    C(requirements.txt) in its build context.
  - In the app's image (with its own Python), whether asyncpg imports, Chainlit's
    version, the auth callbacks, an obsolete C([persistence]) section, and which
    requirements are not installed.
  - From the app's container, whether the database URL's host and port answer. In the
    database's container, with C(psql) over TCP and the URL's credentials, whether the
    login works and which of Chainlit's tables exist.
  - Only reads; never fails on what it finds. The result holds the containers'
    environment (the database password among it), so use it with C(no_log).
version_added: "1.1.0"
author: chainlit-deploy
attributes:
  check_mode:
    support: full
options:
  project_dir:
    description: The compose project's directory (where its compose file is).
    type: path
    default: ""
  project:
    description:
      - The compose project's name (C(docker compose ls)), when O(project_dir) is empty.
    type: str
    default: ""
  container:
    description: The app's container, when it was not started by Compose.
    type: str
    default: ""
  app_service:
    description:
      - The app's service; empty finds the service with a database URL, else the one
        running Chainlit.
    type: str
    default: ""
  db_service:
    description:
      - The database's service; empty takes the service the URL's host names, else one
        running PostgreSQL.
    type: str
    default: ""
  timeout:
    description: Seconds each probe may take.
    type: int
    default: 5
"""

EXAMPLES = r"""
- name: Read the compose deployment
  chainlit_deploy.stack.chainlit_compose_facts:
    project_dir: /srv/chatrebrasil
  register: compose
  no_log: true
"""

RETURN = r"""
facts:
  description: The facts, in the form troubleshoot's compose findings read them.
  returned: always
  type: dict
"""

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
FILES_LABEL = "com.docker.compose.project.config_files"
DIR_LABEL = "com.docker.compose.project.working_dir"
COMPOSE_FILES = ("compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml")
URL_VARIABLES = ("DATABASE_URL", "CHAINLIT_DATABASE_URL")
# A TCP connection from the app's container to the URL's host and port.
REACH = """
import json, socket, sys
host, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
try:
    socket.create_connection((host, port), timeout).close()
    print(json.dumps({"ok": True}))
except socket.gaierror as exc:
    print(json.dumps({"ok": False, "kind": "dns", "error": str(exc)}))
except OSError as exc:
    print(json.dumps({"ok": False, "kind": "connect", "error": str(exc)}))
"""
TABLES_SQL = (
    "SELECT table_name FROM information_schema.tables "
    "WHERE table_schema = current_schema() ORDER BY 1"
)


def project_name(directory: str) -> str:
    """Compose's default project name for a directory."""
    return re.sub(r"[^a-z0-9_-]", "", Path(directory).name.lower())


def compose_files(directory: str) -> list[str]:
    for name in COMPOSE_FILES:
        path = Path(directory) / name
        if path.is_file():
            return [str(path)]
    return []


def compose_config(directory: str, files: list[str], timeout: float) -> tuple[dict, str]:
    """The project's configuration as Compose resolves it (variables filled in)."""
    argv = ["docker", "compose", "--project-directory", directory]
    for path in files:
        argv += ["-f", path]
    rc, out, err = run([*argv, "config", "--format", "json"], timeout)
    if rc != 0:
        return {}, last_line(err) or f"docker compose config: exit {rc}"
    try:
        return json.loads(out), ""
    except ValueError:
        return {}, "docker compose config did not print JSON"


def variable_lines(files: list[str]) -> list[dict[str, Any]]:
    """Each line of the compose files that names a database URL variable."""
    found = []
    pattern = re.compile(r"\b(CHAINLIT_DATABASE_URL|DATABASE_URL)\b")
    for path in files:
        try:
            text = Path(path).read_text(errors="replace")
        except OSError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            match = pattern.search(line)
            if match and not line.lstrip().startswith("#"):
                found.append({"file": path, "line": number, "variable": match.group(1)})
    return found


def containers_of(project: str, timeout: float) -> list[dict[str, Any]]:
    rc, out, _ = run(
        ["docker", "ps", "-a", "--filter", f"label={PROJECT_LABEL}={project}", "-q"], timeout
    )
    if rc != 0:
        return []
    found = [inspect_one(["container"], cid, timeout) for cid in out.split()]
    return [c for c in found if c]


def env_of(container: dict[str, Any] | None, service: dict[str, Any]) -> dict[str, str]:
    """The app's environment: the container's, else the compose configuration's."""
    if container:
        return dotenv.from_list((container.get("Config") or {}).get("Env"))
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return dotenv.from_list(environment)
    return {k: "" if v is None else str(v) for k, v in environment.items()}


def pick_app(services: dict[str, dict[str, Any]], wanted: str) -> str:
    if wanted:
        return wanted if wanted in services else ""
    for name, svc in services.items():
        if any(svc["env"].get(var) for var in URL_VARIABLES):
            return name
    for name, svc in services.items():
        if "chainlit" in " ".join(svc["command"]).lower():
            return name
    return ""


def pick_db(services: dict[str, dict[str, Any]], wanted: str, url_host: str) -> str:
    if wanted:
        return wanted if wanted in services else ""
    if url_host in services:
        return url_host
    for name, svc in services.items():
        if "postgres" in (svc["image"] + " " + " ".join(svc["command"])).lower():
            return name
    return ""


def requirement_names(text: str) -> list[str]:
    """The distributions a requirements file names (options, URLs, paths and
    includes left out: they name no distribution to look for)."""
    names = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith(("-", ".", "/")) or "://" in line.split(";")[0]:
            continue
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if match:
            names.append(match.group(0).lower())
    return names


def database_check(db: dict[str, Any], url: str, timeout: float) -> dict[str, Any]:
    """Log in with the URL's credentials over TCP inside the database's
    container (as a client from the network does), and list the tables."""
    parsed = database_url.parse(url)
    port = str(db.get("port") or 5432)
    argv = ["docker", "exec", "-e", "PGPASSWORD", "-e", "PGCONNECT_TIMEOUT", db["container"]]
    argv += ["psql", "-XtA", "-h", "127.0.0.1", "-p", port, "-U", parsed.user]
    argv += ["-d", parsed.database or parsed.user, "-c", TABLES_SQL]
    env = {**os.environ, "PGPASSWORD": parsed.password, "PGCONNECT_TIMEOUT": str(int(timeout))}
    rc, out, err = run(argv, timeout * 2, env=env)
    if rc == 127 or "executable file not found" in err:
        return {"ran": False, "error": "psql is not in the database's container"}
    message = last_line(err).replace(parsed.password, "***") if parsed.password else last_line(err)
    message = "" if rc == 0 else message
    tables = [line.strip() for line in out.splitlines() if line.strip()] if rc == 0 else []
    return {"ran": True, "ok": rc == 0, "error": message, "tables": tables}


def gather(params: dict[str, Any]) -> dict[str, Any]:
    timeout = float(params["timeout"])
    facts: dict[str, Any] = {
        "engine_error": engine_error(timeout * 2),
        "kind": "container" if params["container"] else "compose",
        "project": params["project"],
        "project_dir": params["project_dir"],
        "files": [],
        "config_error": "",
        "services": {},
        "app_service": "",
        "db_service": "",
        "variable_lines": [],
        "url_variable": "",
        "url": "",
        "requirements_file": "",
        "requirements": None,
        "probe": None,
        "probe_error": "",
        "reach": None,
        "db_check": None,
    }
    if facts["engine_error"]:
        return facts
    containers: list[dict[str, Any]] = []
    config: dict[str, Any] = {}
    if params["container"]:
        one = inspect_one(["container"], params["container"], timeout)
        containers = [one] if one else []
        labels = (one or {}).get("Config", {}).get("Labels") or {}
        if labels.get(PROJECT_LABEL):
            facts["kind"], facts["project"] = "compose", labels[PROJECT_LABEL]
            containers = containers_of(facts["project"], timeout)
    if params["project_dir"]:
        facts["files"] = compose_files(params["project_dir"])
        config, facts["config_error"] = compose_config(
            params["project_dir"], facts["files"], timeout * 4
        )
        facts["project"] = config.get("name") or project_name(params["project_dir"])
    if facts["kind"] == "compose" and facts["project"] and not params["container"]:
        containers = containers_of(facts["project"], timeout)
    if facts["kind"] == "compose" and not facts["project_dir"] and containers:
        labels = containers[0]["Config"].get("Labels") or {}
        facts["project_dir"] = labels.get(DIR_LABEL, "")
        facts["files"] = [f for f in labels.get(FILES_LABEL, "").split(",") if f]
        if facts["project_dir"] and Path(facts["project_dir"]).is_dir():
            config, facts["config_error"] = compose_config(
                facts["project_dir"], facts["files"], timeout * 4
            )
    facts["variable_lines"] = variable_lines(facts["files"])

    services: dict[str, dict[str, Any]] = {}
    for name, svc in (config.get("services") or {}).items():
        services[name] = {"config": svc, "container": None}
    for container in containers:
        labels = container["Config"].get("Labels") or {}
        name = labels.get(SERVICE_LABEL) or container["Name"].lstrip("/")
        services.setdefault(name, {"config": {}, "container": None})
        services[name]["container"] = container
    for name, svc in services.items():
        container, conf = svc.pop("container"), svc.pop("config")
        state = (container or {}).get("State") or {}
        image_name = conf.get("image") or (container or {}).get("Config", {}).get("Image", "")
        if not conf.get("image") and conf.get("build") and facts["project"]:
            image_name = f"{facts['project']}-{name}"
        tagged = inspect_one(["image"], image_name, timeout) if image_name else None
        command = (conf.get("command") or []) + (conf.get("entrypoint") or [])
        if container:
            config_of = container.get("Config") or {}
            command = (config_of.get("Entrypoint") or []) + (config_of.get("Cmd") or [])
        build = conf.get("build") or {}
        ports = [p.get("target") for p in conf.get("ports") or [] if isinstance(p, dict)]
        services[name] = {
            "name": name,
            "container": (container or {}).get("Name", "").lstrip("/"),
            "container_facts": container,
            "status": state.get("Status", "absent" if not container else ""),
            "running": bool(state.get("Running")) and not state.get("Restarting"),
            "restarting": bool(state.get("Restarting")),
            "health": (state.get("Health") or {}).get("Status", ""),
            "exit_code": state.get("ExitCode", 0),
            "image": image_name,
            "image_id": (tagged or {}).get("Id", ""),
            "image_created": (tagged or {}).get("Created", ""),
            "container_image_id": (container or {}).get("Image", ""),
            "build_context": build.get("context", "") if isinstance(build, dict) else str(build),
            "command": [str(part) for part in command],
            "env": env_of(container, conf),
            # As the compose file sets it (the container's has the image's too).
            "config_env": env_of(None, conf),
            "ports": ports,
            "mounts": [
                {k: mount.get(k, "") for k in ("Type", "Name", "Source", "Destination")}
                for mount in (container or {}).get("Mounts") or []
            ],
        }
    facts["services"] = services

    app_name = params["container"] if facts["kind"] == "container" else ""
    if app_name and app_name not in services:
        app_name = ""
    facts["app_service"] = app_name or pick_app(services, params["app_service"])
    app = services.get(facts["app_service"])
    if app:
        for var in URL_VARIABLES:
            if app["env"].get(var):
                facts["url_variable"], facts["url"] = var, dotenv.unquote(app["env"][var])
                break
    url_host = database_url.parse(facts["url"]).host if facts["url"] else ""
    facts["db_service"] = pick_db(services, params["db_service"], url_host)
    if not app:
        return facts

    if app["build_context"]:
        path = Path(app["build_context"]) / "requirements.txt"
        facts["requirements_file"] = str(path)
        try:
            facts["requirements"] = path.read_text(errors="replace")
        except OSError:
            facts["requirements"] = None
    wanted = requirement_names(facts["requirements"] or "")
    container = app["container_facts"]
    image = inspect_one(["image"], container["Image"], timeout) if container else None
    app_dir = ((image or {}).get("Config") or {}).get("WorkingDir") or "/app"
    facts["probe"], facts["probe_error"] = python_probe(
        container,
        app["container"],
        inspect.getsource(image_probe),
        [app_dir, ",".join(wanted)],
        timeout * 6,
    )
    parsed = database_url.parse(facts["url"]) if facts["url"] else None
    if parsed and parsed.host and app["running"]:
        facts["reach"], error = python_probe(
            container,
            app["container"],
            REACH,
            [parsed.host, str(parsed.port or 5432), str(timeout)],
            timeout * 2,
        )
        if facts["reach"] is None:
            facts["reach"] = {"ok": None, "error": error}
    db = services.get(facts["db_service"])
    if parsed and db and db["running"] and parsed.user:
        facts["db_check"] = database_check(
            {"container": db["container"], "port": parsed.port}, facts["url"], timeout
        )
    for svc in services.values():
        svc.pop("container_facts", None)
    return facts


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "project_dir": {"type": "path", "default": ""},
            "project": {"type": "str", "default": ""},
            "container": {"type": "str", "default": ""},
            "app_service": {"type": "str", "default": ""},
            "db_service": {"type": "str", "default": ""},
            "timeout": {"type": "int", "default": 5},
        },
        supports_check_mode=True,
    )
    if not any(module.params[key] for key in ("project_dir", "project", "container")):
        module.fail_json(msg="Give project_dir, project or container: the deployment to read.")
    module.exit_json(changed=False, facts=gather(module.params))


if __name__ == "__main__":
    main()
