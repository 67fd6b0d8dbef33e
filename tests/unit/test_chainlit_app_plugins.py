"""The chainlit_app role's filters and lookup, on real inputs."""

from __future__ import annotations

import pytest
from ansible_collections.chainlit_deploy.stack.plugins.filter import chainlit_app as filters
from ansible_collections.chainlit_deploy.stack.plugins.module_utils import app_image as source
from ansible_collections.chainlit_deploy.stack.plugins.module_utils import database_url
from chainlit_users import verify_password

RESERVED = "p@ss:w/rd%#?&= x"

GOOD_URL = "postgresql://chainlit:pw@host.docker.internal:5432/chainlit"


def test_url_percent_encodes_every_reserved_character_and_round_trips():
    url = database_url.build("chainlit", RESERVED, "host.docker.internal", 5432, "chainlit")
    assert url == (
        "postgresql://chainlit:p%40ss%3Aw%2Frd%25%23%3F%26%3D%20x"
        "@host.docker.internal:5432/chainlit"
    )
    parts = filters.url_parts(url)
    assert parts == {
        "scheme": "postgresql",
        "host": "host.docker.internal",
        "port": 5432,
        "user": "chainlit",
        "password": RESERVED,
        "db": "chainlit",
        "sslmode": "",
        "problems": [],
    }


def test_url_carries_sslmode():
    url = database_url.build("u", "p", "db.example.com", 6432, "chat", "require")
    assert url.endswith("/chat?sslmode=require")
    assert filters.url_parts(url)["sslmode"] == "require"


def test_role_hashes_verify_with_the_reference_app_and_are_stable():
    first = filters.password_hash(RESERVED, "secret:alice")
    assert verify_password(RESERVED, first)
    assert not verify_password("wrong", first)
    assert filters.password_hash(RESERVED, "secret:alice") == first
    assert filters.password_hash(RESERVED, "secret:bob") != first
    with pytest.raises(ValueError, match="empty password"):
        filters.password_hash("", "seed")


def test_good_input_has_no_problem():
    assert filters.input_problems({"OPENAI_API_KEY": "sk-123"}, GOOD_URL, "s" * 64) == []


@pytest.mark.parametrize(
    ("env", "url", "secret", "expected"),
    [
        ({"CHAINLIT_DATABASE_URL": GOOD_URL}, GOOD_URL, "s", "Chainlit never reads"),
        ({"DATABASE_URL": GOOD_URL}, GOOD_URL, "s", "set chainlit_app_database_url"),
        ({}, "postgresql+asyncpg://u:p@h/db", "s", "(the SQLAlchemy form)"),
        ({}, "mysql://u:p@h/db", "s", "accepts only postgresql:// or postgres://"),
        ({}, GOOD_URL, "", "chainlit_app_auth_secret is empty"),
        ({}, GOOD_URL, "   ", "chainlit_app_auth_secret is empty"),
        ({}, GOOD_URL, None, "chainlit_app_auth_secret is empty"),
        ({"KEY": "'v'"}, GOOD_URL, "s", "chainlit_app_env['KEY'] contains a quote"),
        ({}, GOOD_URL, 's"x', "chainlit_app_auth_secret contains a quote"),
        ({"KEY": "a\nb"}, GOOD_URL, "s", "contains a line break"),
    ],
)
def test_each_bad_input_is_named_with_its_fix(env, url, secret, expected):
    problems = filters.input_problems(env, url, secret)
    assert any(expected in problem for problem in problems), problems


def test_source_skips_what_must_not_reach_an_image_and_hashes_contents(tmp_path):
    (tmp_path / "requirements.txt").write_text("chainlit==2.12.0\n")
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / ".env").write_text("SECRET=1\n")
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__/app.cpython-311.pyc").write_bytes(b"\0")
    (tmp_path / ".chainlit").mkdir()
    (tmp_path / ".chainlit/config.toml").write_text("[project]\n")
    first = source.app_files(tmp_path)
    assert sorted(f["path"] for f in first["files"]) == [
        ".chainlit/config.toml",
        "app.py",
        "requirements.txt",
    ]
    (tmp_path / ".env").write_text("SECRET=2\n")
    assert source.app_files(tmp_path)["hash"] == first["hash"]
    (tmp_path / "requirements.txt").write_text("chainlit==2.12.0\nhttpx\n")
    assert source.app_files(tmp_path)["hash"] != first["hash"]


def test_source_refuses_a_directory_without_requirements(tmp_path):
    with pytest.raises(source.AppSourceError, match=r"has no requirements\.txt"):
        source.image_source(tmp_path, "app.py", "python:3.12-slim", "asyncpg==0.32.0")


def test_source_refuses_an_app_without_its_entry_file(tmp_path):
    (tmp_path / "requirements.txt").write_text("chainlit==2.12.0\n")
    (tmp_path / "Dockerfile").write_text("FROM python:3.12-slim\nCOPY main.py /app/\n")
    with pytest.raises(
        source.AppSourceError, match=r"chainlit_app_module 'main\.py' is not a file"
    ):
        source.image_source(tmp_path, "main.py", "python:3.12-slim", "asyncpg==0.32.0")


def test_image_tag_follows_everything_that_goes_into_the_image(tmp_path):
    (tmp_path / "requirements.txt").write_text("chainlit==2.12.0\n")
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "main.py").write_text("print('hi')\n")

    def tag(base: str = "python:3.12-slim", module: str = "app.py") -> str:
        return source.image_source(tmp_path, module, base, "asyncpg==0.32.0")["tag"]

    first = source.image_source(tmp_path, "app.py", "python:3.12-slim", "asyncpg==0.32.0")
    assert first["adds_asyncpg"] is True
    assert first["has_dockerfile"] is False
    assert '"app.py"' in first["dockerfile"]
    assert first["tag"] == tag()
    assert tag(base="debian:bookworm") != first["tag"]
    # The generic Dockerfile runs the entry file: another one is another image.
    assert tag(module="main.py") != first["tag"]

    (tmp_path / "Dockerfile").write_text("FROM z\n")
    with_dockerfile = tag()
    assert tag(module="main.py") == with_dockerfile  # the generic one is not used then
    assert source.image_source(tmp_path, "app.py", "x", "y")["dockerfile"] == ""

    (tmp_path / "requirements.txt").write_text("chainlit==2.12.0\nAsyncPG==0.32.0\n")
    listed = source.image_source(tmp_path, "app.py", "python:3.12-slim", "asyncpg==0.32.0")
    assert listed["adds_asyncpg"] is False
    assert listed["tag"] != with_dockerfile


def test_the_source_reads_the_chainlit_release_the_app_pins(tmp_path):
    (tmp_path / "app.py").write_text("print('hi')\n")
    (tmp_path / "requirements.txt").write_text("chainlit==2.8.5\nasyncpg==0.30.0\n")
    read = source.image_source(tmp_path, "app.py", "x", "y")
    assert (read["chainlit_version"], read["chainlit_version_error"]) == ("2.8.5", "")

    # An app with its own Dockerfile and a lock file: the lock file tells.
    (tmp_path / "requirements.txt").write_text("chainlit>=2\n")
    (tmp_path / "uv.lock").write_text('[[package]]\nname = "chainlit"\nversion = "2.9.6"\n')
    assert source.image_source(tmp_path, "app.py", "x", "y")["chainlit_version"] == "2.9.6"

    (tmp_path / "uv.lock").unlink()
    unpinned = source.image_source(tmp_path, "app.py", "x", "y")
    assert unpinned["chainlit_version"] == ""
    assert "not one release" in unpinned["chainlit_version_error"]


def test_host_ports_finds_a_socket_listening_now_and_not_a_closed_one():
    import socket

    from ansible_collections.chainlit_deploy.stack.plugins.module_utils import host_ports

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    assert port not in host_ports.read_listening_ports()
    listener.listen()
    try:
        assert port in host_ports.read_listening_ports()
    finally:
        listener.close()
    assert port not in host_ports.read_listening_ports()
