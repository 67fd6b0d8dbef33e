"""troubleshoot's findings for a Docker Compose deployment it did not make:
each fault of the original analysis is named with a fix for compose users,
a healthy project gets none, and no secret reaches the report."""

from __future__ import annotations

import copy
import json
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings import compose
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.catalogue import (
    report,
)

PASSWORD = "s3cretPassw0rd"
SECRET = "a-very-secret-jwt-signing-key"
URL = f"postgresql://chainlit:{PASSWORD}@db-persist:5432/chainlit"
FILE = "/srv/chatrebrasil/docker-compose.yml"


def healthy() -> dict[str, Any]:
    """The facts of chainlit_compose_facts for a project that saves chats."""
    app = {
        "name": "app-agent",
        "container": "chatrebrasil-app-agent-1",
        "status": "running",
        "running": True,
        "exit_code": 0,
        "image": "chatrebrasil-app-agent",
        "image_id": "sha256:aaa",
        "container_image_id": "sha256:aaa",
        "env": {"DATABASE_URL": URL, "CHAINLIT_AUTH_SECRET": SECRET},
    }
    db = {
        "name": "db-persist",
        "container": "chatrebrasil-db-persist-1",
        "status": "running",
        "running": True,
        "env": {"POSTGRES_PASSWORD": PASSWORD},
        "mounts": [
            {
                "Type": "volume",
                "Name": "chatrebrasil_pgdata",
                "Source": "/var/lib/docker/volumes/chatrebrasil_pgdata/_data",
                "Destination": "/var/lib/postgresql/data",
            }
        ],
    }
    return {
        "engine_error": "",
        "kind": "compose",
        "project": "chatrebrasil",
        "project_dir": "/srv/chatrebrasil",
        "files": [FILE],
        "services": {"app-agent": app, "db-persist": db},
        "app_service": "app-agent",
        "db_service": "db-persist",
        "variable_lines": [{"file": FILE, "line": 9, "variable": "DATABASE_URL"}],
        "url_variable": "DATABASE_URL",
        "url": URL,
        "requirements_file": "/srv/chatrebrasil/app-agent/requirements.txt",
        "probe": {
            "app_dir": "/app",
            "asyncpg": True,
            "chainlit_version": "2.12.0",
            "auth_callbacks": ["password_auth_callback"],
            "persistence_section": False,
            "missing_distributions": [],
        },
        "reach": {"ok": True},
        "db_check": {"ran": True, "ok": True, "error": "", "tables": list(compose.TABLES)},
    }


def ids(facts: dict[str, Any]) -> list[str]:
    return [item["id"] for item in compose.findings(facts)]


def the_analysis() -> dict[str, Any]:
    """The stack as the analysis found it."""
    facts = healthy()
    app = facts["services"]["app-agent"]
    app["env"] = {"CHAINLIT_DATABASE_URL": URL, "CHAINLIT_AUTH_SECRET": SECRET}
    facts["url_variable"] = "CHAINLIT_DATABASE_URL"
    facts["variable_lines"] = [{"file": FILE, "line": 9, "variable": "CHAINLIT_DATABASE_URL"}]
    facts["probe"].update(
        asyncpg=False, asyncpg_error="ModuleNotFoundError", persistence_section=True
    )
    facts["db_check"]["tables"] = []
    return facts


def test_a_healthy_project_has_no_finding():
    assert compose.findings(healthy()) == []
    assert compose.notes(healthy()) == []


def test_the_faults_of_the_analysis_are_each_named_with_a_compose_fix():
    found = {item["id"]: item for item in compose.findings(the_analysis())}
    assert set(found) == {
        "compose_wrong_database_variable",
        "compose_asyncpg_missing",
        "compose_persistence_section",
        "compose_tables_missing",
    }
    assert f"{FILE}:9" in found["compose_wrong_database_variable"]["fix"]
    assert "docker compose up -d app-agent" in found["compose_wrong_database_variable"]["fix"]
    assert "asyncpg>=0.29" in found["compose_asyncpg_missing"]["fix"]
    assert "docker compose build --no-cache app-agent" in found["compose_asyncpg_missing"]["fix"]
    assert str(compose.SCHEMA_DIR) in found["compose_tables_missing"]["fix"]
    assert (compose.SCHEMA_DIR / "0001_chainlit_2_0_base.sql").is_file()


def test_requirements_fixed_but_not_built_is_a_stale_image_not_a_missing_asyncpg():
    facts = healthy()
    facts["probe"].update(asyncpg=False, missing_distributions=["asyncpg"])
    assert ids(facts) == ["compose_image_stale"]
    facts = healthy()
    facts["services"]["app-agent"]["image_id"] = "sha256:bbb"
    assert ids(facts) == ["compose_image_stale"]


def test_the_database_faults_name_one_cause_each():
    down = healthy()
    down["services"]["db-persist"].update(running=False, status="exited")
    assert ids(down) == ["compose_database_down"]
    unreachable = healthy()
    unreachable["reach"] = {"ok": False, "error": "[Errno 111] Connection refused"}
    assert ids(unreachable) == ["compose_database_unreachable"]
    login = healthy()
    login["db_check"] = {"ran": True, "ok": False, "error": "password authentication failed"}
    assert ids(login) == ["compose_database_login_failed"]
    old_tables = healthy()
    old_tables["db_check"]["tables"] = ["threads", "steps", "users"]
    found = compose.findings(old_tables)
    assert [item["id"] for item in found] == ["compose_tables_missing"]
    assert "not Chainlit 2.x's names" in found[0]["finding"]


def test_a_database_outside_the_project_is_reached_but_not_logged_in_to():
    outside = healthy()
    del outside["services"]["db-persist"]
    outside["db_service"], outside["db_check"] = "", None
    assert ids(outside) == []
    assert "db-persist is no container here" in " ".join(compose.notes(outside))
    outside["reach"] = {"ok": False, "error": "[Errno -2] Name or service not known"}
    assert ids(outside) == ["compose_database_unreachable"]


def test_a_database_whose_data_directory_is_on_no_kept_volume_is_named():
    facts = healthy()
    db = facts["services"]["db-persist"]
    db["mounts"] = []
    found = compose.findings(facts)
    assert [item["id"] for item in found] == ["compose_database_not_persistent"]
    assert "pg_dump" in found[0]["fix"] and "pgdata:/var/lib/postgresql/data" in found[0]["fix"]
    db["mounts"] = [{"Type": "volume", "Name": "a" * 64, "Destination": "/var/lib/postgresql/data"}]
    assert "anonymous volume" in compose.findings(facts)[0]["finding"]
    # The typo of real compose files: a volume beside the data directory.
    db["mounts"] = [{"Type": "volume", "Name": "pg", "Destination": "/var/lib/postgresq/data"}]
    assert ids(facts) == ["compose_database_not_persistent"]
    db["mounts"] = [{"Type": "bind", "Source": "/srv/pg", "Destination": "/var/lib/postgresql"}]
    assert ids(facts) == []
    db["env"]["PGDATA"] = "/pgdata/data"
    assert ids(facts) == ["compose_database_not_persistent"]


def test_no_login_means_no_history():
    no_callback = healthy()
    no_callback["probe"]["auth_callbacks"] = []
    assert ids(no_callback) == ["compose_no_auth"]
    no_secret = healthy()
    del no_secret["services"]["app-agent"]["env"]["CHAINLIT_AUTH_SECRET"]
    assert ids(no_secret) == ["compose_no_auth"]


def test_what_cannot_be_found_is_said():
    assert ids({**healthy(), "engine_error": "Cannot connect"}) == ["compose_engine_down"]
    assert ids({**healthy(), "services": {}}) == ["compose_project_not_found"]
    assert ids({**healthy(), "app_service": ""}) == ["compose_app_not_found"]
    no_url = healthy()
    no_url["url"], no_url["url_variable"] = "", ""
    no_url["services"]["app-agent"]["env"] = {"CHAINLIT_AUTH_SECRET": SECRET}
    assert ids(no_url) == ["compose_database_url_missing"]
    stopped = healthy()
    stopped["services"]["app-agent"].update(running=False, status="restarting", exit_code=1)
    stopped["probe"], stopped["reach"] = None, None
    stopped["probe_error"] = "container is restarting"
    assert ids(stopped) == ["compose_app_not_running"]
    assert "container is restarting" in " ".join(compose.notes(stopped))


def test_no_secret_reaches_the_report():
    for facts in (healthy(), the_analysis()):
        broken = copy.deepcopy(facts)
        broken["db_check"] = {"ran": True, "ok": False, "error": "password authentication failed"}
        for case in (facts, broken):
            text = json.dumps(report(compose.findings(case), compose.notes(case)))
            assert PASSWORD not in text
            assert SECRET not in text
