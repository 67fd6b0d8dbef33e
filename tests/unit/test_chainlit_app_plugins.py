"""The chainlit_app role's filters and lookup, on real inputs."""

from __future__ import annotations

from pathlib import Path

import pytest
from chainlit_users import verify_password
from conftest import load_module

ROLE = Path(__file__).resolve().parents[1] / "roles/chainlit_app"
RESERVED = "p@ss:w/rd%#?&= x"


filters = load_module("chainlit_app_filters", ROLE / "filter_plugins/chainlit_app.py")
source = load_module("chainlit_app_source", ROLE / "lookup_plugins/chainlit_app_source.py")

GOOD_URL = "postgresql://chainlit:pw@host.docker.internal:5432/chainlit"


def test_url_percent_encodes_every_reserved_character_and_round_trips():
    url = filters.database_url("chainlit", RESERVED, "host.docker.internal", 5432, "chainlit")
    assert url == (
        "postgresql://chainlit:p%40ss%3Aw%2Frd%25%23%3F%26%3D%20x"
        "@host.docker.internal:5432/chainlit"
    )
    parts = filters.database_url_parts(url)
    assert parts == {
        "host": "host.docker.internal",
        "port": 5432,
        "user": "chainlit",
        "password": RESERVED,
        "db": "chainlit",
        "sslmode": "",
    }


def test_url_carries_sslmode():
    url = filters.database_url("u", "p", "db.example.com", 6432, "chat", "require")
    assert url.endswith("/chat?sslmode=require")
    assert filters.database_url_parts(url)["sslmode"] == "require"


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
    first = source.app_source(tmp_path)
    assert sorted(f["path"] for f in first["files"]) == [
        ".chainlit/config.toml",
        "app.py",
        "requirements.txt",
    ]
    (tmp_path / ".env").write_text("SECRET=2\n")
    assert source.app_source(tmp_path)["hash"] == first["hash"]
    (tmp_path / "requirements.txt").write_text("chainlit==2.12.0\nhttpx\n")
    assert source.app_source(tmp_path)["hash"] != first["hash"]


def test_source_refuses_a_directory_without_requirements(tmp_path):
    with pytest.raises(source.AnsibleLookupError, match=r"has no requirements\.txt"):
        source.app_source(tmp_path)


def test_image_tag_follows_everything_that_goes_into_the_image(tmp_path):
    (tmp_path / "requirements.txt").write_text("chainlit==2.12.0\n")
    (tmp_path / "app.py").write_text("print('hi')\n")

    def tag(base: str = "python:3.12-slim", generic: str = "FROM x\n") -> str:
        return source.image_source(tmp_path, base, "asyncpg==0.32.0", generic)["tag"]

    first = source.image_source(tmp_path, "python:3.12-slim", "asyncpg==0.32.0", "FROM x\n")
    assert first["adds_asyncpg"] is True
    assert first["has_dockerfile"] is False
    assert first["tag"] == tag()
    assert tag(base="debian:bookworm") != first["tag"]
    assert tag(generic="FROM y\n") != first["tag"]

    (tmp_path / "Dockerfile").write_text("FROM z\n")
    with_dockerfile = tag()
    assert tag(generic="FROM y\n") == with_dockerfile  # the generic one is not used then

    (tmp_path / "requirements.txt").write_text("chainlit==2.12.0\nAsyncPG==0.32.0\n")
    listed = source.image_source(tmp_path, "python:3.12-slim", "asyncpg==0.32.0", "")
    assert listed["adds_asyncpg"] is False
    assert listed["tag"] != with_dockerfile
