"""Reading what troubleshoot's probes gathered: container ports, nginx sites,
image names and the app's log. Every text that leaves here is masked."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.database_url import mask

# Lines of the app's log that point at a known fault, by finding id.
LOG_PATTERNS = {
    "asyncpg_missing": re.compile(r"No module named '?asyncpg"),
    "database_url_scheme": re.compile(r"invalid DSN|invalid connection option", re.I),
    "wrong_db_password": re.compile(r"password authentication failed", re.I),
    "database_unreachable": re.compile(
        r"Connect call failed|Connection refused|could not connect to server|"
        r"Name or service not known|Temporary failure in name resolution",
        re.I,
    ),
    "auth_secret_missing": re.compile(r"CHAINLIT_AUTH_SECRET|JWT secret", re.I),
    "app_writes_read_only_root": re.compile(r"Read-only file system"),
}
# A line that says why a process stopped: "ValueError: ...", "ERROR ...", "CRITICAL ...".
ERROR_LINE = re.compile(r"^\s*(?:[\w.]*(?:Error|Exception)\b|.*\b(?:ERROR|CRITICAL)\b)")
# What every stop of a release on a read-only root logs, after the stop was
# asked for: Chainlit's removal of .files at shutdown (server.py, lifespan)
# fails on its tmpfs. Never a cause; the same error at import is one.
SHUTDOWN_NOISE = re.compile(
    r"^.*Traceback \(most recent call last\):\n(?:(?!.*Traceback).*\n)*?"
    r".*rmtree\(FILES_DIRECTORY\)\n(?:(?!.*Traceback).*\n)*?"
    r".*Application shutdown failed\. Exiting\.?.*(?:\n|$)",
    re.MULTILINE,
)
# "2026/11/25 00:38:02 [emerg] 8843#8843: " before each line nginx -t prints.
NGINX_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: ")


def one_line(text: Any, limit: int = 200) -> str:
    return " ".join(mask(str(text or "")).split())[:limit]


def log_evidence(logs: str) -> dict[str, str]:
    """Last log line matching each known fault, and the last error line
    ("last_error"), masked and shortened."""
    evidence: dict[str, str] = {}
    for line in SHUTDOWN_NOISE.sub("", logs or "").splitlines():
        short = one_line(line)
        for fid, pattern in LOG_PATTERNS.items():
            if pattern.search(line):
                evidence[fid] = short
        if ERROR_LINE.match(line):
            evidence["last_error"] = short.rstrip(".")
    return evidence


def published(container: Mapping[str, Any] | None) -> list[dict[str, str]]:
    """The host addresses a container publishes (as created: HostConfig.PortBindings,
    else as running: NetworkSettings.Ports), each {ip, port, container_port}."""
    container = container or {}
    bindings = (
        (container.get("HostConfig") or {}).get("PortBindings")
        or (container.get("NetworkSettings") or {}).get("Ports")
        or {}
    )
    return [
        {
            "ip": binding.get("HostIp") or "0.0.0.0",
            "port": str(binding.get("HostPort") or ""),
            "container_port": port,
        }
        for port, items in sorted(bindings.items())
        for binding in items or []
        if binding.get("HostPort")
    ]


def direct_url(container: Mapping[str, Any] | None, app_url: str) -> str:
    """Base URL of the app on the first port its container publishes, with the root
    path of app_url; "" when it publishes none."""
    ports = published(container)
    if not ports:
        return ""
    ip = ports[0]["ip"]
    host = "127.0.0.1" if ip in ("0.0.0.0", "") else "[::1]" if ip == "::" else ip
    host = f"[{host}]" if ":" in host and not host.startswith("[") else host
    path = urlsplit(app_url or "").path.rstrip("/")
    return f"http://{host}:{ports[0]['port']}{path}"


def nginx_upstream_ports(site: str | None) -> list[str]:
    """Ports of the `server host:port;` lines of an nginx site's upstream blocks."""
    ports: list[str] = []
    for block in re.findall(r"\bupstream\s+\S+\s*\{([^}]*)\}", site or ""):
        ports += re.findall(r"^\s*server\s+\S+:(\d+)\b[^;]*;", block, re.M)
    return ports


def nginx_error(text: str) -> str:
    """The line of `nginx -t`'s output that names the error, without its timestamp."""
    lines = [
        NGINX_LOG_PREFIX.sub(r"\1 ", " ".join(line.split()))
        for line in (text or "").splitlines()
        if line.strip()
    ]
    picked = [line for line in lines if re.search(r"\[(?:emerg|alert|crit)\]", line)] or lines
    return picked[0][:200] if picked else ""


def port_of(address: str) -> str:
    """The port of "127.0.0.1:8601" (or of the last of "a:1, b:2"), else ""."""
    match = re.search(r":(\d+)\s*$", (address or "").split(",")[-1])
    return match.group(1) if match else ""


def image_label(container: Mapping[str, Any] | None, tags: Sequence[str] | None, app: str) -> str:
    """A readable name of the container's image: its <app>-app:<tag> (not :previous),
    else its first tag, else the container's Config.Image (an image ID since releases
    run images by ID)."""
    tags = list(tags or [])
    own = [t for t in tags if t.startswith(f"{app}-app:") and not t.endswith(":previous")]
    config_image = str(((container or {}).get("Config") or {}).get("Image") or "")
    return (own or tags or [config_image])[0]


def answer(status_and_msg: Mapping[str, Any]) -> str:
    """How an HTTP probe went: "answers 502 (...)" or "gets no answer (...)"."""
    status = status_and_msg.get("status")
    got = f"answers {status}" if isinstance(status, int) and status > 0 else "gets no answer"
    return got + f" ({one_line(status_and_msg.get('msg', ''), 120)})"
