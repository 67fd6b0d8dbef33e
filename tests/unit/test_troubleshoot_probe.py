"""The probe the troubleshoot role runs with the image's Python: run here on a
fake app directory, as `python -c` runs it in the container."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = Path(__file__).resolve().parents[2] / "plugins" / "module_utils" / "image_probe.py"


def run_probe(app_dir: Path, *args: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.read_text(), str(app_dir), *args],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    )
    return json.loads(done.stdout)


def make_app(root: Path, code: str, config: str = "[project]\n") -> Path:
    (root / ".chainlit").mkdir(parents=True)
    (root / "app.py").write_text(code)
    (root / ".chainlit" / "config.toml").write_text(config)
    return root


def test_it_finds_the_auth_callbacks_of_the_app(tmp_path: Path) -> None:
    app = make_app(
        tmp_path,
        "import chainlit as cl\n\n@cl.password_auth_callback\nasync def login(u, p): ...\n",
    )
    (app / "auth").mkdir()
    (app / "auth" / "oauth.py").write_text("@chainlit.oauth_callback\ndef cb(*a): ...\n")
    (app / ".venv").mkdir()
    (app / ".venv" / "x.py").write_text("@cl.header_auth_callback\n")
    result = run_probe(app)
    assert result["auth_callbacks"] == ["oauth_callback", "password_auth_callback"]
    assert result["python_files"] == 2


def test_an_app_without_callbacks_has_none(tmp_path: Path) -> None:
    app = make_app(tmp_path, "# password_auth_callback is not used here\nimport chainlit as cl\n")
    assert run_probe(app)["auth_callbacks"] == []


def test_it_finds_an_obsolete_persistence_section(tmp_path: Path) -> None:
    app = make_app(tmp_path, "", "[project]\n\n [persistence]\nenabled = true\n")
    assert run_probe(app)["persistence_section"] is True
    other = make_app(tmp_path / "b", "", "[project]\n# [persistence] was removed\n")
    assert run_probe(other)["persistence_section"] is False


def test_it_reports_whether_asyncpg_imports(tmp_path: Path) -> None:
    result = run_probe(make_app(tmp_path, ""))
    try:
        import asyncpg  # noqa: F401

        assert result["asyncpg"] is True
    except ImportError:
        assert result["asyncpg"] is False
        assert "asyncpg" in result["asyncpg_error"]
