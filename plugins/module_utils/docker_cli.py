"""The Docker command line as troubleshoot's modules read it: run a command
with a timeout (never raising), inspect one object, and run a standalone
probe script with the Python of a container or of its image. Only reads."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Mapping
from typing import Any


def run(
    argv: list[str],
    timeout: float,
    stdin: str | None = None,
    env: Mapping[str, str] | None = None,
) -> tuple[int, str, str]:
    """(exit code, stdout, stderr); 127 when the program is missing, 124 on timeout."""
    try:
        done = subprocess.run(
            argv,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            env=dict(env) if env is not None else None,
        )
    except FileNotFoundError as exc:
        return 127, "", str(exc)
    except subprocess.TimeoutExpired:
        return 124, "", f"{argv[0]} did not answer within {timeout:.0f}s"
    return done.returncode, done.stdout, done.stderr


def last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def inspect_one(kind: list[str], name: str, timeout: float) -> dict[str, Any] | None:
    """``docker [kind] inspect name``, or None when there is no such object."""
    rc, out, _ = run(["docker", *kind, "inspect", name], timeout)
    if rc != 0:
        return None
    found = json.loads(out or "[]")
    return found[0] if found else None


def engine_error(timeout: float) -> str:
    """Why the Docker engine does not answer; empty when it does."""
    rc, _, err = run(["docker", "version", "--format", "{{.Server.Version}}"], timeout)
    return "" if rc == 0 else last_line(err) or "docker is not installed"


def python_probe(
    container: Mapping[str, Any] | None,
    name: str,
    source: str,
    args: list[str],
    timeout: float,
) -> tuple[dict[str, Any] | None, str]:
    """Run ``source`` (a standalone script printing one JSON line) with the
    Python of the running container, else of its image in a throw-away
    container without network; the JSON, and why it could not run."""
    state = (container or {}).get("State") or {}
    error = ""
    # An image may have python3 alone (Debian's): tried when python is missing.
    for python in ("python", "python3"):
        attempts = []
        if state.get("Running") and not state.get("Restarting"):
            attempts.append(["docker", "exec", "-i", name, python, "-", *args])
        if container:
            attempts.append(
                ["docker", "run", "--rm", "-i", "--network", "none", "--entrypoint", python,
                 container["Image"], "-", *args]
            )  # fmt: skip
        for argv in attempts:
            rc, out, err = run(argv, timeout, stdin=source)
            lines = [line for line in out.splitlines() if line.startswith("{")]
            if rc == 0 and lines:
                return json.loads(lines[-1]), ""
            error = last_line(err) or f"exit {rc}"
        if "executable file not found" not in error:
            break
    return None, error
