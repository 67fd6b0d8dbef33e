"""Read-only probe run with the app image's own Python (docker exec or docker run).
Standalone: it imports nothing of the collection (module chainlit_app_facts
sends its source).

Prints one JSON object: whether asyncpg imports, the Chainlit version, the
auth callbacks the app's code declares, and whether its config.toml still has
an obsolete [persistence] section; given distribution names (a second
argument, comma-separated), also which of them the image does not have
installed. (The database, as the app reaches it, is the module
chainlit_app_db_check's.)
Usage: python -c "$(cat probe.py)" APP_DIR [DIST,DIST...]
"""

import importlib.metadata
import json
import re
import sys
from pathlib import Path

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


def missing(distributions: list[str]) -> list[str]:
    """The distributions that are not installed, in the order given."""
    out = []
    for name in distributions:
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out.append(name)
    return out


def probe(app_dir: Path, distributions: list[str] | None = None) -> dict:
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
    if distributions:
        result["missing_distributions"] = missing(distributions)
    return result


if __name__ == "__main__":
    args = sys.argv[1:]
    wanted = [name for name in (args[1] if len(args) > 1 else "").split(",") if name]
    print(json.dumps(probe(Path(args[0] if args and args[0] else "."), wanted)))
