"""Read-only probe run with the app image's own Python (docker exec or docker run).

Prints one JSON object: whether asyncpg imports, the Chainlit version, the
auth callbacks the app's code declares, whether its config.toml still has an
obsolete [persistence] section and, when asked, whether DATABASE_URL's host
and port accept a TCP connection from here. Never prints the URL itself.
Usage: python -c "$(cat probe.py)" APP_DIR [connect]
"""

import importlib.metadata
import json
import os
import re
import socket
import sys
from pathlib import Path
from urllib.parse import urlsplit

CALLBACK = re.compile(
    r"^\s*@\s*(?:\w+\.)*(password_auth_callback|header_auth_callback|oauth_callback)\b", re.M
)
PERSISTENCE = re.compile(r"^\s*\[\s*persistence\s*\]", re.M)
SKIPPED_DIRS = {".git", "__pycache__", ".files", ".venv", "venv", "node_modules", "site-packages"}
MAX_FILES = 500


def app_callbacks(app_dir: Path) -> tuple[list[str], int]:
    found: set[str] = set()
    scanned = 0
    for path in sorted(app_dir.rglob("*.py")):
        if SKIPPED_DIRS.intersection(path.relative_to(app_dir).parts[:-1]):
            continue
        scanned += 1
        if scanned > MAX_FILES:
            break
        try:
            found.update(CALLBACK.findall(path.read_text(errors="replace")))
        except OSError:
            continue
    return sorted(found), scanned


def tcp_check(url: str, timeout: float = 5.0) -> dict:
    try:
        parts = urlsplit(url)
        host, port = parts.hostname or "", parts.port or 5432
    except ValueError as exc:
        return {"ok": False, "host": "", "port": 0, "error": f"unparsable URL: {exc}"}
    if not host:
        return {"ok": False, "host": "", "port": port, "error": "the URL names no host"}
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return {"ok": True, "host": host, "port": port, "error": ""}
    except OSError as exc:
        return {"ok": False, "host": host, "port": port, "error": f"{type(exc).__name__}: {exc}"}


def probe(app_dir: Path, connect: bool) -> dict:
    result: dict = {"app_dir": str(app_dir)}
    try:
        import asyncpg  # noqa: F401

        result["asyncpg"], result["asyncpg_error"] = True, ""
    except Exception as exc:
        result["asyncpg"], result["asyncpg_error"] = False, f"{type(exc).__name__}: {exc}"
    try:
        result["chainlit_version"] = importlib.metadata.version("chainlit")
    except importlib.metadata.PackageNotFoundError:
        result["chainlit_version"] = ""
    result["auth_callbacks"], result["python_files"] = app_callbacks(app_dir)
    config = app_dir / ".chainlit" / "config.toml"
    result["config_toml"] = config.is_file()
    result["persistence_section"] = config.is_file() and bool(
        PERSISTENCE.search(config.read_text(errors="replace"))
    )
    if connect:
        # Quotes around the value are a fault of their own, reported from the .env.
        url = os.environ.get("DATABASE_URL", "").strip("\"'")
        result["db_tcp"] = tcp_check(url) if url else None
    return result


if __name__ == "__main__":
    args = [arg for arg in sys.argv[1:] if arg]
    print(json.dumps(probe(Path(args[0] if args else "."), "connect" in args[1:])))
