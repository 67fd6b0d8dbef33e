"""The pure parts of module chainlit_compose_facts: what a requirements file
names, which compose lines name the database variable, and which services
are the app and its database."""

from __future__ import annotations

from ansible_collections.chainlit_deploy.stack.plugins.modules import chainlit_compose_facts as m


def test_requirement_names_are_the_distributions_only():
    text = (
        "chainlit[all]==2.12.0\n"
        "# PostgreSQL dependencies (para persistência Chainlit)\n"
        "psycopg2-binary>=2.9.0  # sync driver\n"
        "asyncpg ; python_version >= '3.9'\n"
        "-r base.txt\n"
        "--index-url https://pypi.example/simple\n"
        "git+https://github.com/org/pkg.git#egg=pkg\n"
        "./vendor/local-pkg\n"
        "Some_Package~=1.0\n"
    )
    assert m.requirement_names(text) == ["chainlit", "psycopg2-binary", "asyncpg", "some_package"]


def test_the_lines_naming_the_database_variable_are_found(tmp_path):
    compose = tmp_path / "docker-compose.yml"
    compose.write_text(
        "services:\n"
        "  app-agent:\n"
        "    environment:\n"
        "      # CHAINLIT_DATABASE_URL was wrong\n"
        "      - CHAINLIT_DATABASE_URL=postgresql://u:p@db-persist:5432/c\n"
        "      DATABASE_URL: postgresql://u:p@db-persist:5432/c\n"
    )
    assert m.variable_lines([str(compose), str(tmp_path / "missing.yml")]) == [
        {"file": str(compose), "line": 5, "variable": "CHAINLIT_DATABASE_URL"},
        {"file": str(compose), "line": 6, "variable": "DATABASE_URL"},
    ]


def service(env=None, image="", command=()):
    return {"env": env or {}, "image": image, "command": list(command)}


def test_the_app_and_the_database_services_are_picked():
    services = {
        "redis": service(image="redis:7"),
        "db-persist": service(image="chatrebrasil-db-persist", command=["postgres", "-D", "x"]),
        "app-agent": service(env={"CHAINLIT_DATABASE_URL": "postgresql://u:p@db-persist/c"}),
    }
    assert m.pick_app(services, "") == "app-agent"
    assert m.pick_app(services, "redis") == "redis"
    assert m.pick_app(services, "nope") == ""
    assert m.pick_db(services, "", "db-persist") == "db-persist"
    assert m.pick_db(services, "", "elsewhere.example") == "db-persist"
    no_url = {"web": service(command=["chainlit", "run", "app.py"]), "db": service(image="x")}
    assert m.pick_app(no_url, "") == "web"
    assert m.pick_db(no_url, "", "") == ""
    assert m.project_name("/srv/Chat.Re-Brasil_2") == "chatre-brasil_2"
