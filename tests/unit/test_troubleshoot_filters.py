"""The troubleshoot role's diagnosis: each fault is named with its cause and fix,
a healthy deployment gets no finding, and no secret ever reaches the report."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.database_url import mask
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings import (
    catalogue,
    classify,
    evidence,
)

PASSWORD = "s3cretPassw0rd"
SECRET = "a-very-secret-jwt-signing-key"
URL = f"postgresql://chainlit:{PASSWORD}@host.docker.internal:5432/chainlit"
IMAGE = "chainlit-app:cd7f7a9a1e3ed04b"
IMAGE_ID = "sha256:45dfe2b79590cebf80afcb323300cc8ac2b45dd4897bf9a82ae1427af77f813b"
SITE = "/etc/nginx/conf.d/chainlit-deploy-chainlit.conf"


def site(port: int) -> str:
    """The app's nginx site as the chainlit_app role writes it, forwarding to `port`."""
    return (
        "map $http_upgrade $chainlit_chainlit_connection {\n    default upgrade;\n}\n"
        f"upstream chainlit_chainlit {{\n    server 127.0.0.1:{port};\n}}\n"
        "server {\n    listen 127.0.0.1:8502;\n    server_name _;\n"
        "    location / {\n        proxy_pass http://chainlit_chainlit;\n    }\n}\n"
    )


def bindings(port: int) -> dict[str, list[dict[str, str]]]:
    return {"8000/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]}


ENV_TEXT = (
    "# Ansible managed\n"
    f"DATABASE_URL={URL}\n"
    f"CHAINLIT_AUTH_SECRET={SECRET}\n"
    "CHAINLIT_USERS=admin:scrypt$32768$8$1$c2FsdA$a2V5\n"
)


APP_DB_OK = {
    "database_url_set": True,
    "asyncpg": {"ok": True},
    "connect": {"ok": True},
    "session": {"user": "chainlit", "database": "chainlit", "server_version": "17.6"},
    "tables": {t: {"ok": True} for t in ("User", "Thread", "Step", "Element", "Feedback")},
    "write": {"ok": True},
}


def app_db_failing(stage: str, sqlstate: str, message: str, cls: str = "PostgresError") -> dict:
    """The app-side probe's result with one failure at ``stage`` (connect,
    read or write)."""
    probe = copy.deepcopy(APP_DB_OK)
    failure = {"class": cls, "sqlstate": sqlstate, "message": message, "detail": ""}
    if stage == "connect":
        probe.update(connect={"ok": False, "error": failure}, tables={}, write={})
    elif stage == "read":
        probe["tables"]["User"] = {"ok": False, "error": failure}
    else:
        probe["write"] = {"ok": False, "stage": stage, "error": failure}
    return probe


def healthy() -> dict[str, Any]:
    """What the probes read on a healthy lab deployment: the container serving the
    release on slot port 8601, nginx in front of it on 127.0.0.1:8502."""
    env = [line for line in ENV_TEXT.splitlines() if not line.startswith("#")]
    return {
        "container_name": "chainlit",
        "env_file": "/opt/chainlit/.env",
        "env_text": ENV_TEXT,
        "env_error": "",
        "container": {
            "Image": IMAGE_ID,
            "Config": {
                "Image": IMAGE_ID,
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
            "HostConfig": {"PortBindings": bindings(8601)},
        },
        "image_name": IMAGE,
        "running_image": IMAGE,
        "running_image_id": IMAGE_ID,
        "probe": {
            "app_dir": "/app",
            "asyncpg": True,
            "asyncpg_error": "",
            "chainlit_version": "2.12.0",
            "auth_callbacks": ["password_auth_callback"],
            "python_files": 2,
            "config_toml": True,
            "persistence_section": False,
        },
        "probe_error": "",
        "engine_error": "",
        "app_db": APP_DB_OK,
        "logs": "2026-11-24 22:16:20 - INFO - chainlit - Your app is available at http://0.0.0.0:8000\n",
        "health": {
            "url": "http://127.0.0.1:8502/health",
            "status": 200,
            "msg": "OK",
            "upstream": "127.0.0.1:8601",
        },
        "direct_health": {"url": "http://127.0.0.1:8601/health", "status": 200, "msg": "OK"},
        "proxy": {
            "installed": True,
            "service": "active",
            "config_ok": True,
            "config_test": "nginx: the configuration file /etc/nginx/nginx.conf syntax is ok\n",
            "site_file": SITE,
            "site": site(8601),
            "site_error": "",
        },
        "next_container": None,
        "auth_config": {"requireLogin": True, "passwordAuth": True, "headerAuth": False},
        "db": classify.db_params(URL),
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
        "expected_image_id": IMAGE_ID,
    }


def with_env(facts: dict[str, Any], text: str) -> dict[str, Any]:
    """The same deployment with this .env, recreated from it (docker run --env-file)."""
    facts["env_text"] = text
    facts["container"]["Config"]["Env"] = [
        line for line in text.splitlines() if line and not line.startswith("#")
    ]
    return facts


def ids(facts: dict[str, Any]) -> list[str]:
    return [item["id"] for item in classify.findings(facts)]


def test_a_healthy_deployment_has_no_finding() -> None:
    assert classify.findings(healthy()) == []
    assert catalogue.report([]) == ["no problem found"]


def test_chainlit_database_url_is_named_as_the_wrong_variable() -> None:
    facts = with_env(healthy(), ENV_TEXT.replace("DATABASE_URL=", "CHAINLIT_DATABASE_URL="))
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["wrong_database_variable"]
    assert "DATABASE_URL is missing" in found[0]["finding"]
    assert "/opt/chainlit/.env" in found[0]["finding"]


def test_a_missing_database_url_is_named() -> None:
    text = "\n".join(line for line in ENV_TEXT.splitlines() if "DATABASE_URL" not in line)
    assert ids(with_env(healthy(), text)) == ["database_url_missing"]


def test_the_sqlalchemy_url_scheme_is_named() -> None:
    facts = with_env(healthy(), ENV_TEXT.replace("postgresql://", "postgresql+asyncpg://"))
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["database_url_scheme"]
    assert "invalid DSN" in found[0]["cause"]


def test_quoted_values_are_named_without_their_value() -> None:
    facts = with_env(healthy(), ENV_TEXT.replace(f"={SECRET}", f"='{SECRET}'"))
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["quoted_env_value"]
    assert "CHAINLIT_AUTH_SECRET" in found[0]["finding"]


def test_a_missing_auth_secret_is_named() -> None:
    text = "\n".join(line for line in ENV_TEXT.splitlines() if "AUTH_SECRET" not in line)
    assert ids(with_env(healthy(), text)) == ["auth_secret_missing"]


def test_an_env_file_edited_after_the_container_was_created_is_named() -> None:
    facts = healthy()
    facts["env_text"] = ENV_TEXT.replace(PASSWORD, "another")
    found = classify.findings(facts)
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
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["asyncpg_missing"]
    assert "No module named 'asyncpg'" in found[0]["finding"]


def test_another_chainlit_version_is_named() -> None:
    facts = healthy()
    facts["probe"]["chainlit_version"] = "2.5.5"
    assert ids(facts) == ["chainlit_version_mismatch"]


@pytest.mark.parametrize(
    ("version", "reason"),
    [("1.3.2", "outside the supported range"), ("2.0.6", "login token"), ("2.7.1", "no code")],
)
def test_a_chainlit_release_outside_the_range_is_named_with_why(version, reason) -> None:
    facts = healthy()
    facts["probe"]["chainlit_version"] = version
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["chainlit_version_unsupported"]
    assert reason in found[0]["finding"]


def test_postgresql_down_is_the_root_cause_not_the_unreachable_database() -> None:
    facts = healthy()
    facts.update(pg_service="inactive", pg_clusters="17 main 5432 down postgres /x /y")
    facts["app_db"] = app_db_failing(
        "connect", "", "[Errno 111] Connect call failed", "ConnectionRefusedError"
    )
    facts["schema"] = {"msg": "connection to server at 127.0.0.1 failed: Connection refused"}
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["postgresql_down"]
    assert "inactive" in found[0]["finding"]
    assert "17/main" in found[0]["finding"]


def test_a_remote_database_is_not_checked_with_the_local_service() -> None:
    facts = healthy()
    facts["db"] = classify.db_params(URL.replace("host.docker.internal", "db.example.org"))
    facts.update(pg_service="inactive", pg_clusters="")
    assert ids(facts) == []


def test_an_unreachable_database_is_named() -> None:
    facts = healthy()
    facts["app_db"] = app_db_failing(
        "connect", "", "[Errno 111] Connect call failed", "ConnectionRefusedError"
    )
    facts["schema"] = {"msg": "connection to server at 127.0.0.1 port 5433 failed: refused"}
    assert ids(facts) == ["database_unreachable"]


def test_a_wrong_password_is_named() -> None:
    facts = healthy()
    facts["schema"] = {"msg": 'FATAL: password authentication failed for user "chainlit"'}
    found = classify.findings(facts)
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
    found = classify.findings(facts)
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
    found = classify.findings(facts)
    assert [item["id"] for item in found] == [expected]
    assert "JWT secret" in found[0]["cause"]


def test_the_shutdown_of_a_read_only_release_is_not_given_as_the_cause() -> None:
    """Chainlit removes .files when it stops, which fails on the tmpfs of a
    read-only root; the error before it is the one that says why."""
    facts = healthy()
    facts["container"]["State"] = {"Status": "exited", "Running": False, "ExitCode": 3}
    facts["logs"] += (
        "ValueError: You must provide a JWT secret in the environment.\n"
        "Traceback (most recent call last):\n"
        '  File "/opt/venv/lib/python3.11/site-packages/chainlit/server.py", line 192\n'
        "    shutil.rmtree(FILES_DIRECTORY)\n"
        "OSError: [Errno 30] Read-only file system: '/app/.files'\n"
        "\n"
        "ERROR:    Application shutdown failed. Exiting.\n"
    )
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["container_not_running"]
    assert "JWT secret" in found[0]["cause"], found[0]["cause"]
    assert "Read-only" not in found[0]["cause"] and "shutdown" not in found[0]["cause"]


def test_an_app_that_writes_on_a_read_only_root_is_named_with_the_path() -> None:
    """A container of the operator's own, read-only without a tmpfs on .files
    (compose `read_only: true`): Chainlit cannot make it at import."""
    facts = healthy()
    facts["container"]["State"] = {"Status": "restarting", "Running": True, "Restarting": True}
    facts["container"]["RestartCount"] = 4
    facts["logs"] += (
        "Traceback (most recent call last):\n"
        '  File "/opt/venv/lib/python3.11/site-packages/chainlit/config.py", line 62\n'
        "    FILES_DIRECTORY.mkdir(exist_ok=True)\n"
        "OSError: [Errno 30] Read-only file system: '/app/.files'\n"
    )
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["container_restarting", "app_writes_read_only_root"]
    assert "'/app/.files'" in found[1]["finding"]
    assert "chainlit_app_writable_paths" in found[1]["fix"]


def test_an_unhealthy_container_is_named_with_its_check() -> None:
    facts = healthy()
    facts["container"]["State"]["Health"] = {
        "Status": "unhealthy",
        "FailingStreak": 4,
        "Log": [{"Output": "urlopen error [Errno 111] Connection refused"}],
    }
    facts["health"]["status"] = -1
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["container_unhealthy"]
    assert "Connection refused" in found[0]["finding"]


def test_a_starting_container_is_not_a_fault() -> None:
    facts = healthy()
    facts["container"]["State"]["Health"]["Status"] = "starting"
    facts["health"] = {"url": "u", "status": 502, "msg": "Bad Gateway"}
    facts["direct_health"].update(status=-1, msg="refused")
    assert ids(facts) == []


def test_an_app_that_does_not_answer_where_published_is_named() -> None:
    facts = healthy()
    facts["health"].update(status=502, msg="Bad Gateway")
    facts["direct_health"].update(status=-1, msg="Connection refused")
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["app_not_answering"]
    assert "http://127.0.0.1:8601/health" in found[0]["finding"]
    assert "publishes 127.0.0.1:8601->8000/tcp" in found[0]["finding"]


def test_a_container_that_publishes_no_port_is_named_as_not_answering() -> None:
    facts = healthy()
    facts["container"]["HostConfig"]["PortBindings"] = {}
    facts["health"].update(status=502, msg="Bad Gateway")
    facts["direct_health"] = {}
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["app_not_answering"]
    assert "publishes no port" in found[0]["finding"]


def test_a_deployment_from_before_the_proxy_has_no_finding() -> None:
    facts = healthy()
    facts["container"]["HostConfig"]["PortBindings"] = bindings(8502)
    facts["health"] = {"url": "http://127.0.0.1:8502/health", "status": 200, "msg": "OK"}
    facts["direct_health"] = {"url": "http://127.0.0.1:8502/health", "status": 200, "msg": "OK"}
    facts["proxy"].update(installed=False, service="", site=None, site_error="not found")
    assert ids(facts) == []


def test_facts_without_the_proxy_are_still_classified() -> None:
    facts = healthy()
    for key in ("proxy", "direct_health", "next_container", "running_image_id"):
        del facts[key]
    assert ids(facts) == []


def test_a_stopped_nginx_is_named_and_not_the_app() -> None:
    facts = healthy()
    facts["proxy"]["service"] = "inactive"
    facts["health"] = {"url": "http://127.0.0.1:8502/health", "status": -1, "msg": "refused"}
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["proxy_down"]
    assert "inactive" in found[0]["finding"]
    assert found[0]["fix"].startswith("`systemctl start nginx`")


def test_nginx_that_cannot_start_is_named_with_what_nginx_t_says() -> None:
    facts = healthy()
    facts["proxy"].update(
        service="failed",
        config_ok=False,
        config_test=(
            '2026/11/25 00:38:02 [emerg] 8843#8843: unknown directive "bogus" in '
            "/etc/nginx/conf.d/x.conf:1\nnginx: configuration file /etc/nginx/nginx.conf test "
            "failed\n"
        ),
    )
    facts["health"] = {"url": "http://127.0.0.1:8502/health", "status": -1, "msg": "refused"}
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["proxy_down"]
    assert '[emerg] unknown directive "bogus" in /etc/nginx/conf.d/x.conf:1' in found[0]["finding"]
    assert "cannot start" in found[0]["cause"]
    assert "correct what `nginx -t` names first" in found[0]["fix"]


def test_a_broken_configuration_under_a_running_nginx_is_named() -> None:
    facts = healthy()
    facts["proxy"].update(config_ok=False, config_test="nginx: [emerg] unexpected end of file\n")
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["proxy_config_invalid"]
    assert "unexpected end of file" in found[0]["finding"]


def test_nginx_forwarding_where_the_container_is_not_published_is_named() -> None:
    """The container recreated by hand on the other slot port: nginx answers 502."""
    facts = healthy()
    facts["container"]["HostConfig"]["PortBindings"] = bindings(8602)
    facts["container"]["State"]["Health"]["Status"] = "starting"
    facts["health"].update(status=502, msg="Bad Gateway")
    facts["direct_health"]["url"] = "http://127.0.0.1:8602/health"
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["proxy_upstream_mismatch"]
    assert "127.0.0.1:8601" in found[0]["finding"]
    assert "publishes 127.0.0.1:8602" in found[0]["finding"]
    assert "by hand" in found[0]["cause"]
    assert found[0]["fix"].startswith(f"Run {catalogue.run('deploy')}")


def test_the_mismatch_is_read_from_the_site_when_nginx_does_not_answer() -> None:
    facts = healthy()
    facts["proxy"]["service"] = "inactive"
    facts["proxy"]["site"] = site(8602)
    facts["health"] = {"url": "http://127.0.0.1:8502/health", "status": -1, "msg": "refused"}
    assert ids(facts) == ["proxy_down", "proxy_upstream_mismatch"]


def test_nginx_not_reloaded_after_its_site_was_written_is_named() -> None:
    facts = healthy()
    facts["container"]["HostConfig"]["PortBindings"] = bindings(8602)
    facts["proxy"]["site"] = site(8602)
    facts["health"].update(status=502, msg="Bad Gateway")
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["proxy_upstream_mismatch"]
    assert f"{SITE} names 127.0.0.1:8602" in found[0]["finding"]
    assert "`nginx -t && systemctl reload nginx`" in found[0]["fix"]


def test_a_release_interrupted_after_the_switch_names_both_containers() -> None:
    facts = healthy()
    facts["next_container"] = {
        "Created": "2026-11-25T00:40:34.123456Z",
        "State": {"Status": "running", "Running": True},
        "HostConfig": {"PortBindings": bindings(8602)},
    }
    facts["proxy"]["site"] = site(8602)
    facts["health"]["upstream"] = "127.0.0.1:8602"
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["proxy_upstream_mismatch", "stale_next_container"]
    assert "chainlit-next publishes it" in found[0]["finding"]
    assert "renamed chainlit" in found[0]["cause"]


def test_a_new_release_left_by_an_interrupted_run_is_named() -> None:
    facts = healthy()
    facts["next_container"] = {
        "Created": "2026-11-25T00:40:34.123456Z",
        "State": {"Status": "exited", "Running": False},
        "HostConfig": {"PortBindings": bindings(8602)},
    }
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["stale_next_container"]
    assert "exited, created 2026-11-25T00:40:34, publishes 127.0.0.1:8602" in found[0]["finding"]
    assert found[0]["fix"].startswith("`docker rm -f chainlit-next`")


def test_an_app_reachable_only_on_its_own_port_is_named_without_nginx() -> None:
    facts = healthy()
    facts["proxy"].update(installed=False, service="", site=None, site_error="file not found")
    facts["health"] = {"url": "http://127.0.0.1:8502/health", "status": -1, "msg": "refused"}
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["proxy_missing"]
    assert "nginx is not installed" in found[0]["finding"]
    facts["proxy"].update(installed=True, service="active")
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["proxy_missing"]
    assert f"no site for the app ({SITE}: file not found)" in found[0]["finding"]


def test_another_front_on_the_apps_address_is_named() -> None:
    facts = healthy()
    facts["health"] = {"url": "http://127.0.0.1:8502/health", "status": 404, "msg": "Not Found"}
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["proxy_not_forwarding"]
    assert "answers 404" in found[0]["finding"]
    assert "sport = :8502" in found[0]["fix"]


def test_the_proxy_helpers_read_ports_sites_and_image_names() -> None:
    container = healthy()["container"]
    assert evidence.published(container) == [
        {"ip": "127.0.0.1", "port": "8601", "container_port": "8000/tcp"}
    ]
    running = {
        "NetworkSettings": {"Ports": {"8000/tcp": [{"HostIp": "0.0.0.0", "HostPort": "80"}]}}
    }
    assert evidence.direct_url(running, "http://127.0.0.1:8502/chat/") == "http://127.0.0.1:80/chat"
    assert evidence.direct_url({"HostConfig": {"PortBindings": {}}}, "http://h:1") == ""
    assert evidence.nginx_upstream_ports(site(8602)) == ["8602"]
    assert evidence.nginx_upstream_ports(None) == []
    tags = ["chainlit-app:previous", "chainlit-app:cd7f7a9a1e3ed04b"]
    assert evidence.image_label(container, tags, "chainlit") == IMAGE
    assert evidence.image_label(container, ["chainlit-fault:x"], "chainlit") == "chainlit-fault:x"
    assert evidence.image_label(container, [], "chainlit") == IMAGE_ID


def test_a_missing_container_is_named_alone() -> None:
    facts = healthy()
    facts.update(container=None, probe=None, running_image="", auth_config=None)
    facts["health"] = {"url": "u", "status": -1, "msg": "refused"}
    assert ids(facts) == ["container_missing"]


def test_an_image_older_than_the_source_is_named() -> None:
    facts = healthy()
    facts.update(
        expected_image="chainlit-app:40506ca644847be1",
        expected_image_present=False,
        expected_image_id="",
    )
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["stale_image"]
    assert "40506ca644847be1" in found[0]["finding"]
    assert "not built" in found[0]["finding"]


def test_an_image_rebuilt_under_the_same_tag_is_told_by_its_id() -> None:
    facts = healthy()
    facts.update(expected_image_id="sha256:0123456789abcdef")
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["stale_image"]
    assert "(built, present on the host)" in found[0]["finding"]


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
    lines = catalogue.report(classify.findings(facts), ["something"])
    text = "\n".join(lines)
    assert PASSWORD not in text
    assert SECRET not in text
    assert lines[-1].startswith(f"{len(classify.findings(facts))} findings: ")


def test_mask_url_hides_only_the_password() -> None:
    assert mask(URL) == "postgresql://chainlit:***@host.docker.internal:5432/chainlit"
    assert mask("postgresql://host/db") == "postgresql://host/db"
    assert mask("") == ""


def test_the_database_url_is_the_running_containers_else_the_env_files() -> None:
    facts = healthy()
    assert classify.database_url_of(ENV_TEXT, facts["container"]) == {
        "url": URL,
        "source": "the container",
    }
    assert classify.database_url_of(f'DATABASE_URL="{URL}"', None) == {
        "url": URL,
        "source": "the .env",
    }
    assert classify.database_url_of("", None) == {"url": "", "source": ""}
    old_name = classify.database_url_of(f"CHAINLIT_DATABASE_URL={URL}", None)
    assert old_name == {"url": URL, "source": "CHAINLIT_DATABASE_URL in the .env"}


def test_db_params_decode_the_url_as_seen_from_the_host() -> None:
    params = classify.db_params(
        "postgresql://u%40x:p%2Fw@host.docker.internal:6543/d%20b?sslmode=require"
    )
    assert params == {
        "login_host": "127.0.0.1",
        "login_port": 6543,
        "login_db": "d b",
        "login_user": "u@x",
        "login_password": "p/w",
        "ssl_mode": "require",
        "url_host": "host.docker.internal",
        "port": 6543,
        "db": "d b",
        "user": "u@x",
        "local": True,
    }
    assert classify.db_params(URL, "10.0.0.5")["login_host"] == "10.0.0.5"
    assert classify.db_params("postgresql://h:notaport/db")["login_host"] == ""


def test_the_report_numbers_findings_with_cause_and_fix() -> None:
    facts = copy.deepcopy(healthy())
    facts["probe"]["persistence_section"] = True
    lines = catalogue.report(classify.findings(facts), ["the schema (x)"])
    assert lines[0].startswith("1. [obsolete_persistence_section] FINDING: ")
    assert lines[1].strip().startswith("CAUSE: ")
    assert lines[2].strip().startswith("FIX: ")
    assert lines[3] == "not checked: the schema (x)"
    assert lines[-1] == "1 finding: obsolete_persistence_section"


SQLSTATE_CASES = [
    ("connect", "28000", 'no pg_hba.conf entry for host "172.17.0.2"', "pg_hba_no_entry"),
    ("connect", "28000", "pg_hba.conf rejects connection for host", "pg_hba_rejects"),
    ("connect", "28000", 'role "chainlit" is not permitted to log in', "role_nologin"),
    ("connect", "28P01", 'password authentication failed for user "c"', "wrong_db_password"),
    ("connect", "42501", 'permission denied for database "chainlit"', "connect_privilege_revoked"),
    (
        "connect",
        "55000",
        "is not currently accepting connections",
        "database_not_accepting_connections",
    ),
    ("connect", "53300", 'too many connections for role "chainlit"', "connection_limit_reached"),
    ("connect", "57P03", "the database system is starting up", "database_starting_or_stopping"),
    (
        "connect",
        "42704",
        'unrecognized configuration parameter "schema"',
        "database_url_unknown_parameter",
    ),
    ("connect", "3D000", 'database "x" does not exist', "database_missing"),
    ("read", "42501", "permission denied for table User", "table_privileges_missing"),
    (
        "Step (user_message)",
        "42501",
        "permission denied for table Step",
        "table_privileges_missing",
    ),
    ("User", "25006", "cannot execute INSERT in a read-only transaction", "read_only_sessions"),
    (
        "User",
        "57014",
        "canceling statement due to statement timeout",
        "statement_timeout_too_small",
    ),
    (
        "User",
        "42P10",
        "there is no unique or exclusion constraint",
        "user_identifier_unique_missing",
    ),
    (
        "Step (assistant_message)",
        "22P02",
        'invalid input value for enum "StepType"',
        "schema_step_types_missing",
    ),
    ("Thread", "23514", 'violates check constraint "x"', "writes_blocked"),
    ("Thread", "P0001", "inserts blocked", "writes_blocked"),
    (
        "Step (run)",
        "XX000",
        "cache lookup failed for type 16573",
        "schema_recreated_under_running_app",
    ),
    ("Step (run)", "53100", "could not extend file: No space left on device", "database_disk_full"),
    ("Step (run)", "55P03", "canceling statement due to lock timeout", "chat_tables_locked"),
    ("Step (run)", "40P01", "deadlock detected", "database_write_failed"),
]


@pytest.mark.parametrize(("stage", "sqlstate", "message", "expected"), SQLSTATE_CASES)
def test_what_postgresql_answers_the_app_is_named_by_sqlstate(stage, sqlstate, message, expected):
    facts = healthy()
    facts["app_db"] = app_db_failing(stage, sqlstate, message)
    found = classify.findings(facts)
    assert [item["id"] for item in found] == [expected]
    assert sqlstate in found[0]["finding"]
    assert found[0]["cause"] and found[0]["fix"]


NETWORK_CASES = [
    (
        "ConnectionRefusedError",
        "[Errno 111] Connect call failed ('172.17.0.1', 5432)",
        "database_refused",
    ),
    ("gaierror", "[Errno -2] Name or service not known", "database_host_unresolvable"),
    ("TimeoutError", "", "database_timeout"),
    (
        "ConnectionError",
        'PostgreSQL server at "h:5432" rejected SSL upgrade',
        "database_ssl_refused",
    ),
    ("SSLCertVerificationError", "certificate verify failed", "database_ssl_unverified"),
]


@pytest.mark.parametrize(("cls", "message", "expected"), NETWORK_CASES)
def test_what_keeps_the_app_from_reaching_postgresql_is_named(cls, message, expected):
    facts = healthy()
    facts["app_db"] = app_db_failing("connect", "", message, cls)
    assert ids(facts) == [expected]


def test_a_password_refused_for_an_expired_role_is_told_apart_by_the_servers_evidence():
    facts = healthy()
    facts["app_db"] = app_db_failing("connect", "28P01", "password authentication failed")
    facts["db_evidence"] = {"role": {"password_expired": True}}
    assert ids(facts) == ["role_password_expired"]


def test_missing_tables_the_host_sees_are_invisible_to_the_app():
    facts = healthy()
    facts["app_db"] = app_db_failing("read", "42P01", 'relation "User" does not exist')
    assert ids(facts) == ["tables_not_visible"]  # the host-side schema check passed


def test_a_bad_url_is_named_once_not_again_as_a_refused_connection():
    facts = with_env(healthy(), ENV_TEXT.replace("postgresql://", "postgresql+asyncpg://"))
    facts["app_db"] = app_db_failing(
        "connect", "", "invalid DSN: scheme is expected", "ClientConfigurationError"
    )
    assert ids(facts) == ["database_url_scheme"]


def test_the_docker_engine_down_is_one_finding_and_no_crash():
    facts = healthy()
    facts.update(
        engine_error="Cannot connect to the Docker daemon at unix:///var/run/docker.sock",
        container=None,
        probe=None,
        app_db=None,
        running_image="",
        direct_health={},
    )
    facts["health"].update(status=502, msg="Bad Gateway", upstream="")
    assert ids(facts) == ["docker_engine_down"]


def test_a_probe_that_cannot_run_in_the_container_is_named():
    facts = healthy()
    facts["app_db"] = {"exec_error": "OCI runtime exec failed: python: not found"}
    assert ids(facts) == ["app_db_probe_failed"]


def test_an_unencoded_password_in_the_url_is_named_without_it():
    url = "postgresql://chainlit:p@ss/w0rd@host.docker.internal:5432/chainlit"
    facts = with_env(healthy(), ENV_TEXT.replace(URL, url))
    facts["app_db"] = app_db_failing(
        "connect", "", "[Errno -2] Name or service not known", "gaierror"
    )
    found = classify.findings(facts)
    assert [item["id"] for item in found] == ["database_url_unencoded"]
    assert "w0rd" not in json.dumps(found)
