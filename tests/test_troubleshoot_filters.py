"""The troubleshoot role's diagnosis: each fault is named with its cause and fix,
a healthy deployment gets no finding, and no secret ever reaches the report."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
from conftest import load_module

ROLE = Path(__file__).resolve().parents[1] / "roles" / "troubleshoot"
PASSWORD = "s3cretPassw0rd"
SECRET = "a-very-secret-jwt-signing-key"
URL = f"postgresql://chainlit:{PASSWORD}@host.docker.internal:5432/chainlit"
IMAGE = "chainlit-app:cd7f7a9a1e3ed04b"


ts = load_module("troubleshoot_filters", ROLE / "filter_plugins" / "troubleshoot.py")

ENV_TEXT = (
    "# Ansible managed\n"
    f"DATABASE_URL={URL}\n"
    f"CHAINLIT_AUTH_SECRET={SECRET}\n"
    "CHAINLIT_USERS=admin:scrypt$32768$8$1$c2FsdA$a2V5\n"
)


def healthy() -> dict[str, Any]:
    """What the probes read on a healthy lab deployment."""
    env = [line for line in ENV_TEXT.splitlines() if not line.startswith("#")]
    return {
        "container_name": "chainlit",
        "env_file": "/opt/chainlit/.env",
        "env_text": ENV_TEXT,
        "env_error": "",
        "container": {
            "Config": {
                "Image": IMAGE,
                "Env": [*env, "PATH=/opt/venv/bin:/usr/bin", "CHAINLIT_HOST=0.0.0.0"],
                "Healthcheck": {"Test": ["CMD", "python", "-c", "..."]},
            },
            "State": {
                "Status": "running",
                "Running": True,
                "Restarting": False,
                "ExitCode": 0,
                "Health": {"Status": "healthy", "FailingStreak": 0, "Log": []},
            },
            "RestartCount": 0,
        },
        "image_name": IMAGE,
        "running_image": IMAGE,
        "probe": {
            "app_dir": "/app",
            "asyncpg": True,
            "asyncpg_error": "",
            "chainlit_version": "2.12.0",
            "auth_callbacks": ["password_auth_callback"],
            "python_files": 2,
            "config_toml": True,
            "persistence_section": False,
            "db_tcp": {"ok": True, "host": "host.docker.internal", "port": 5432, "error": ""},
        },
        "probe_error": "",
        "logs": "2026-11-24 22:16:20 - INFO - chainlit - Your app is available at http://0.0.0.0:8000\n",
        "health": {"url": "http://127.0.0.1:8502/health", "status": 200, "msg": "OK"},
        "auth_config": {"requireLogin": True, "passwordAuth": True, "headerAuth": False},
        "db": ts.db_params(URL),
        "pg_service": "active",
        "pg_clusters": "17 main 5432 online postgres /var/lib/postgresql/17/main /var/log/x.log",
        "schema": {
            "schema_ok": True,
            "missing_tables": [],
            "missing_columns": [],
            "mismatched_columns": [],
            "missing_step_types": [],
        },
        "expected_chainlit_version": "2.12.0",
        "app_src": "/work/app",
        "expected_image": IMAGE,
        "expected_image_present": True,
    }


def with_env(facts: dict[str, Any], text: str) -> dict[str, Any]:
    """The same deployment with this .env, recreated from it (docker run --env-file)."""
    facts["env_text"] = text
    facts["container"]["Config"]["Env"] = [
        line for line in text.splitlines() if line and not line.startswith("#")
    ]
    return facts


def ids(facts: dict[str, Any]) -> list[str]:
    return [item["id"] for item in ts.findings(facts)]


def test_a_healthy_deployment_has_no_finding() -> None:
    assert ts.findings(healthy()) == []
    assert ts.report([]) == ["no problem found"]


def test_chainlit_database_url_is_named_as_the_wrong_variable() -> None:
    facts = with_env(healthy(), ENV_TEXT.replace("DATABASE_URL=", "CHAINLIT_DATABASE_URL="))
    found = ts.findings(facts)
    assert [item["id"] for item in found] == ["wrong_database_variable"]
    assert "DATABASE_URL is missing" in found[0]["finding"]
    assert "/opt/chainlit/.env" in found[0]["finding"]


def test_a_missing_database_url_is_named() -> None:
    text = "\n".join(line for line in ENV_TEXT.splitlines() if "DATABASE_URL" not in line)
    assert ids(with_env(healthy(), text)) == ["database_url_missing"]


def test_the_sqlalchemy_url_scheme_is_named() -> None:
    facts = with_env(healthy(), ENV_TEXT.replace("postgresql://", "postgresql+asyncpg://"))
    found = ts.findings(facts)
    assert [item["id"] for item in found] == ["database_url_scheme"]
    assert "invalid DSN" in found[0]["cause"]


def test_quoted_values_are_named_without_their_value() -> None:
    facts = with_env(healthy(), ENV_TEXT.replace(f"={SECRET}", f"='{SECRET}'"))
    found = ts.findings(facts)
    assert [item["id"] for item in found] == ["quoted_env_value"]
    assert "CHAINLIT_AUTH_SECRET" in found[0]["finding"]


def test_a_missing_auth_secret_is_named() -> None:
    text = "\n".join(line for line in ENV_TEXT.splitlines() if "AUTH_SECRET" not in line)
    assert ids(with_env(healthy(), text)) == ["auth_secret_missing"]


def test_an_env_file_edited_after_the_container_was_created_is_named() -> None:
    facts = healthy()
    facts["env_text"] = ENV_TEXT.replace(PASSWORD, "another")
    found = ts.findings(facts)
    assert [item["id"] for item in found] == ["env_file_not_applied"]
    assert "DATABASE_URL" in found[0]["finding"]


def test_an_unreadable_env_file_is_named_once() -> None:
    facts = healthy()
    facts["env_text"], facts["env_error"] = None, "File not found"
    assert ids(facts) == ["env_file_missing"]


def test_asyncpg_missing_in_the_image_is_named_with_the_log_line() -> None:
    facts = healthy()
    facts["probe"].update(asyncpg=False, asyncpg_error="ModuleNotFoundError: asyncpg")
    facts["logs"] += "ModuleNotFoundError: No module named 'asyncpg'\n"
    found = ts.findings(facts)
    assert [item["id"] for item in found] == ["asyncpg_missing"]
    assert "No module named 'asyncpg'" in found[0]["finding"]


def test_another_chainlit_version_is_named() -> None:
    facts = healthy()
    facts["probe"]["chainlit_version"] = "2.5.5"
    assert ids(facts) == ["chainlit_version_mismatch"]


def test_postgresql_down_is_the_root_cause_not_the_unreachable_database() -> None:
    facts = healthy()
    facts.update(pg_service="inactive", pg_clusters="17 main 5432 down postgres /x /y")
    facts["probe"]["db_tcp"] = {"ok": False, "host": "h", "port": 5432, "error": "refused"}
    facts["schema"] = {"msg": "connection to server at 127.0.0.1 failed: Connection refused"}
    found = ts.findings(facts)
    assert [item["id"] for item in found] == ["postgresql_down"]
    assert "inactive" in found[0]["finding"]
    assert "17/main" in found[0]["finding"]


def test_a_remote_database_is_not_checked_with_the_local_service() -> None:
    facts = healthy()
    facts["db"] = ts.db_params(URL.replace("host.docker.internal", "db.example.org"))
    facts.update(pg_service="inactive", pg_clusters="")
    assert ids(facts) == []


def test_an_unreachable_database_is_named() -> None:
    facts = healthy()
    facts["probe"]["db_tcp"] = {"ok": False, "host": "h", "port": 5433, "error": "refused"}
    facts["schema"] = {"msg": "connection to server at 127.0.0.1 port 5433 failed: refused"}
    assert ids(facts) == ["database_unreachable"]


def test_a_wrong_password_is_named() -> None:
    facts = healthy()
    facts["schema"] = {"msg": 'FATAL: password authentication failed for user "chainlit"'}
    found = ts.findings(facts)
    assert [item["id"] for item in found] == ["wrong_db_password"]


def test_a_missing_database_is_named() -> None:
    facts = healthy()
    facts["schema"] = {"msg": 'FATAL: database "chainlit" does not exist'}
    assert ids(facts) == ["database_missing"]


def test_missing_tables_columns_and_step_types_are_named() -> None:
    facts = healthy()
    facts["schema"] = {
        "schema_ok": False,
        "missing_tables": ["Feedback"],
        "missing_columns": ["Element.language"],
        "mismatched_columns": [{"column": "Step.metadata", "expected": "jsonb"}],
        "missing_step_types": ["rerank"],
    }
    found = ts.findings(facts)
    assert [item["id"] for item in found] == [
        "schema_tables_missing",
        "schema_columns_missing",
        "schema_step_types_missing",
    ]
    assert "Element.language" in found[1]["finding"]
    assert "Step.metadata" in found[1]["finding"]


def test_no_auth_callback_is_named_from_the_app_and_from_its_code() -> None:
    facts = healthy()
    facts["auth_config"] = {"requireLogin": False, "passwordAuth": False, "oauthProviders": []}
    facts["probe"]["auth_callbacks"] = []
    assert ids(facts) == ["no_auth_callback"]
    facts["auth_config"] = None
    assert ids(facts) == ["no_auth_callback"]


def test_the_app_that_offers_a_login_has_an_auth_callback() -> None:
    facts = healthy()
    facts["probe"]["auth_callbacks"] = []  # e.g. registered without a decorator
    assert ids(facts) == []


@pytest.mark.parametrize(
    ("state", "restarts", "expected"),
    [
        ({"Status": "restarting", "Running": True, "Restarting": True}, 7, "container_restarting"),
        ({"Status": "running", "Running": True, "Restarting": False}, 3, "container_restarting"),
        ({"Status": "exited", "Running": False, "Restarting": False}, 0, "container_not_running"),
    ],
)
def test_a_container_that_does_not_stay_up_is_named(
    state: dict[str, Any], restarts: int, expected: str
) -> None:
    facts = healthy()
    facts["container"]["State"] = {**state, "ExitCode": 1}
    facts["container"]["RestartCount"] = restarts
    facts["logs"] += "ValueError: You must provide a JWT secret in the environment.\n"
    found = ts.findings(facts)
    assert [item["id"] for item in found] == [expected]
    assert "JWT secret" in found[0]["cause"]


def test_an_unhealthy_container_is_named_with_its_check() -> None:
    facts = healthy()
    facts["container"]["State"]["Health"] = {
        "Status": "unhealthy",
        "FailingStreak": 4,
        "Log": [{"Output": "urlopen error [Errno 111] Connection refused"}],
    }
    facts["health"]["status"] = -1
    found = ts.findings(facts)
    assert [item["id"] for item in found] == ["container_unhealthy"]
    assert "Connection refused" in found[0]["cause"]


def test_a_starting_container_is_not_a_fault() -> None:
    facts = healthy()
    facts["container"]["State"]["Health"]["Status"] = "starting"
    facts["health"] = {"url": "u", "status": -1, "msg": "refused"}
    assert ids(facts) == []


def test_an_app_that_does_not_answer_where_published_is_named() -> None:
    facts = healthy()
    facts["health"] = {"url": "http://127.0.0.1:8502/health", "status": -1, "msg": "refused"}
    assert ids(facts) == ["app_not_answering"]


def test_a_missing_container_is_named_alone() -> None:
    facts = healthy()
    facts.update(container=None, probe=None, running_image="", auth_config=None)
    facts["health"] = {"url": "u", "status": -1, "msg": "refused"}
    assert ids(facts) == ["container_missing"]


def test_an_image_older_than_the_source_is_named() -> None:
    facts = healthy()
    facts.update(expected_image="chainlit-app:40506ca644847be1", expected_image_present=False)
    found = ts.findings(facts)
    assert [item["id"] for item in found] == ["stale_image"]
    assert "40506ca644847be1" in found[0]["finding"]
    assert "not built" in found[0]["finding"]


def test_an_obsolete_persistence_section_is_named() -> None:
    facts = healthy()
    facts["probe"]["persistence_section"] = True
    assert ids(facts) == ["obsolete_persistence_section"]


def test_no_secret_reaches_the_report() -> None:
    facts = with_env(
        healthy(), f'DATABASE_URL="{URL.replace("postgresql", "postgresql+asyncpg")}"\n'
    )
    facts["schema"] = {"msg": f"could not connect: {URL} password authentication failed"}
    facts["logs"] = f"ERROR connecting to {URL}\n"
    facts["container"]["State"].update(Status="exited", Running=False)
    lines = ts.report(ts.findings(facts), ["something"])
    text = "\n".join(lines)
    assert PASSWORD not in text
    assert SECRET not in text
    assert lines[-1].startswith(f"{len(ts.findings(facts))} findings: ")


def test_mask_url_hides_only_the_password() -> None:
    assert ts.mask_url(URL) == "postgresql://chainlit:***@host.docker.internal:5432/chainlit"
    assert ts.mask_url("postgresql://host/db") == "postgresql://host/db"
    assert ts.mask_url("") == ""


def test_the_database_url_is_the_running_containers_else_the_env_files() -> None:
    facts = healthy()
    assert ts.database_url(ENV_TEXT, facts["container"]) == {"url": URL, "source": "the container"}
    assert ts.database_url(f'DATABASE_URL="{URL}"', None) == {"url": URL, "source": "the .env"}
    assert ts.database_url("", None) == {"url": "", "source": ""}
    old_name = ts.database_url(f"CHAINLIT_DATABASE_URL={URL}", None)
    assert old_name == {"url": URL, "source": "CHAINLIT_DATABASE_URL in the .env"}


def test_db_params_decode_the_url_as_seen_from_the_host() -> None:
    params = ts.db_params(
        "postgresql://u%40x:p%2Fw@host.docker.internal:6543/d%20b?sslmode=require"
    )
    assert params == {
        "host": "127.0.0.1",
        "url_host": "host.docker.internal",
        "port": 6543,
        "db": "d b",
        "user": "u@x",
        "password": "p/w",
        "sslmode": "require",
        "local": True,
    }
    assert ts.db_params(URL, "10.0.0.5")["host"] == "10.0.0.5"
    assert ts.db_params("postgresql://h:notaport/db")["host"] == ""


def test_the_report_numbers_findings_with_cause_and_fix() -> None:
    facts = copy.deepcopy(healthy())
    facts["probe"]["persistence_section"] = True
    lines = ts.report(ts.findings(facts), ["the schema (x)"])
    assert lines[0].startswith("1. [obsolete_persistence_section] FINDING: ")
    assert lines[1].strip().startswith("CAUSE: ")
    assert lines[2].strip().startswith("FIX: ")
    assert lines[3] == "not checked: the schema (x)"
    assert lines[-1] == "1 finding: obsolete_persistence_section"
