"""Filters of the role troubleshoot: parse what the probes read, name each
fault with its cause and fix, and print the report. Nothing here prints a
secret: database URLs are masked and .env values are never shown."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

# asyncpg, which Chainlit's data layer hands DATABASE_URL to, accepts only these.
ASYNCPG_SCHEMES = ("postgresql", "postgres")
QUOTES = "\"'"
# Hosts naming the app host itself, from the container or from the host.
LOCAL_DB_HOSTS = {"host.docker.internal", "localhost", "127.0.0.1", "::1"}
AUTH_CALLBACKS = "password_auth_callback, header_auth_callback or oauth_callback"
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
}
# A line that says why a process stopped: "ValueError: ...", "ERROR ...", "CRITICAL ...".
ERROR_LINE = re.compile(r"^\s*(?:[\w.]*(?:Error|Exception)\b|.*\b(?:ERROR|CRITICAL)\b)")
# "2026/11/25 00:38:02 [emerg] 8843#8843: " before each line nginx -t prints.
NGINX_LOG_PREFIX = re.compile(r"^\d{4}/\d\d/\d\d \d\d:\d\d:\d\d (\[\w+\]) \d+#\d+: ")
URL_CREDENTIALS = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@\s]*@", re.I)


def mask_url(url: str) -> str:
    """The URL with its password replaced by ***."""
    return URL_CREDENTIALS.sub(r"\1***@", url or "")


def parse_env(text: str | None) -> dict[str, str]:
    """KEY=value lines as Docker's --env-file reads them: values raw, quotes kept."""
    env: dict[str, str] = {}
    for line in (text or "").splitlines():
        line = line.lstrip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        env[key] = value
    return env


def env_list(items: Iterable[str] | None) -> dict[str, str]:
    """A container's Config.Env (["KEY=value", ...]) as a dict."""
    return parse_env("\n".join(items or []))


def unquote_value(value: str) -> str:
    return (
        value[1:-1] if len(value) >= 2 and value[0] == value[-1] and value[0] in QUOTES else value
    )


def database_url(env_text: str | None, container: Mapping[str, Any] | None) -> dict[str, str]:
    """The URL of the app's database and where it was found: the running container's
    DATABASE_URL, else the .env's; else the CHAINLIT_DATABASE_URL meant as it (so the
    database is checked even while the variable has the wrong name)."""
    config = (container or {}).get("Config") or {}
    places = [
        ("the container", env_list(config.get("Env"))),
        ("the .env", parse_env(env_text)),
    ]
    for name in ("DATABASE_URL", "CHAINLIT_DATABASE_URL"):
        for place, env in places:
            if env.get(name):
                source = place if name == "DATABASE_URL" else f"{name} in {place}"
                return {"url": unquote_value(env[name]), "source": source}
    return {"url": "", "source": ""}


def db_params(url: str, login_host: str = "") -> dict[str, Any]:
    """Connection parameters of the URL as seen from the host (host.docker.internal is
    this host, reached at 127.0.0.1 from the host itself), decoded."""
    try:
        parts = urlsplit(url or "")
        port = parts.port or 5432
    except ValueError:
        return {"host": "", "port": 5432, "db": "", "user": "", "password": "", "sslmode": ""}
    query = dict(item.split("=", 1) for item in parts.query.split("&") if "=" in item)
    host = parts.hostname or ""
    return {
        "host": login_host or ("127.0.0.1" if host == "host.docker.internal" else host),
        "url_host": host,
        "port": port,
        "db": unquote(parts.path.lstrip("/")),
        "user": unquote(parts.username or ""),
        "password": unquote(parts.password or ""),
        "sslmode": unquote(query.get("sslmode", "")) or "prefer",
        "local": host in LOCAL_DB_HOSTS,
    }


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


def image_label(container: Mapping[str, Any] | None, tags: Sequence[str] | None, app: str) -> str:
    """A readable name of the container's image: its <app>-app:<tag> (not :previous),
    else its first tag, else the container's Config.Image (an image ID since releases
    run images by ID)."""
    tags = list(tags or [])
    own = [t for t in tags if t.startswith(f"{app}-app:") and not t.endswith(":previous")]
    config_image = str(((container or {}).get("Config") or {}).get("Image") or "")
    return (own or tags or [config_image])[0]


def _finding(fid: str, finding: str, cause: str, fix: str) -> dict[str, str]:
    return {"id": fid, "finding": finding, "cause": cause, "fix": fix}


def _places(places: Sequence[str]) -> str:
    return " and ".join(places)


def _log_evidence(logs: str) -> dict[str, str]:
    """Last log line matching each known fault, and the last error line
    ("last_error"), masked and shortened."""
    evidence: dict[str, str] = {}
    for line in (logs or "").splitlines():
        short = " ".join(mask_url(line).split())[:200]
        for fid, pattern in LOG_PATTERNS.items():
            if pattern.search(line):
                evidence[fid] = short
        if ERROR_LINE.match(line):
            evidence["last_error"] = short.rstrip(".")
    return evidence


def _env_findings(facts: Mapping[str, Any], sources: Mapping[str, dict[str, str]]) -> list[dict]:
    out: list[dict] = []

    def where(test: Any) -> list[str]:
        return [name for name, env in sources.items() if test(env)]

    old_name = where(lambda env: "CHAINLIT_DATABASE_URL" in env)
    if old_name:
        without = where(lambda env: "CHAINLIT_DATABASE_URL" in env and not env.get("DATABASE_URL"))
        out.append(
            _finding(
                "wrong_database_variable",
                f"CHAINLIT_DATABASE_URL is set in {_places(old_name)}"
                + (f"; DATABASE_URL is missing in {_places(without)}" if without else ""),
                "Chainlit reads only DATABASE_URL; CHAINLIT_DATABASE_URL is read nowhere, so "
                "no data layer starts and nothing is saved (History stays empty).",
                "Rename it to DATABASE_URL (the chainlit_app role writes DATABASE_URL itself and "
                "refuses CHAINLIT_DATABASE_URL in chainlit_app_env): run playbooks/deploy.yml.",
            )
        )
    missing = where(lambda env: not env.get("DATABASE_URL") and "CHAINLIT_DATABASE_URL" not in env)
    if missing:
        out.append(
            _finding(
                "database_url_missing",
                f"DATABASE_URL is not set in {_places(missing)}",
                "Without DATABASE_URL (or a @cl.data_layer) Chainlit starts no data layer: "
                "chats are not saved.",
                "Run playbooks/deploy.yml, which writes DATABASE_URL into the .env and "
                "recreates the container with it.",
            )
        )
    bad_scheme = {
        name: unquote_value(env["DATABASE_URL"]).split("://", 1)[0]
        for name, env in sources.items()
        if env.get("DATABASE_URL")
        and unquote_value(env["DATABASE_URL"]).split("://", 1)[0] not in ASYNCPG_SCHEMES
    }
    if bad_scheme:
        schemes = sorted(set(bad_scheme.values()))
        out.append(
            _finding(
                "database_url_scheme",
                f"DATABASE_URL starts with {', '.join(s + '://' for s in schemes)} in "
                f"{_places(list(bad_scheme))}",
                "Chainlit's data layer hands DATABASE_URL to asyncpg, which accepts only "
                "postgresql:// or postgres://"
                + (
                    "; postgresql+asyncpg:// is SQLAlchemy's form and asyncpg rejects it "
                    "('invalid DSN')"
                    if any("+" in s for s in schemes)
                    else ""
                )
                + ". Every data-layer call fails.",
                "Write it as postgresql://user:password@host:port/db (chainlit_app_database_url "
                "or the chainlit_app_db_* variables) and run playbooks/deploy.yml.",
            )
        )
    quoted = {
        name: sorted(k for k, v in env.items() if v[:1] in QUOTES or v[-1:] in QUOTES)
        for name, env in sources.items()
    }
    quoted = {name: keys for name, keys in quoted.items() if keys}
    if quoted:
        out.append(
            _finding(
                "quoted_env_value",
                "quoted values in "
                + "; ".join(f"{name}: {', '.join(keys)}" for name, keys in quoted.items()),
                "Docker's --env-file passes quotes through literally: the app sees them as part "
                "of the value (a URL '\"postgresql://...\"', a secret with quotes), which is "
                "then invalid or not the one meant.",
                "Write the values unquoted (the chainlit_app role does, and refuses quotes): run "
                "playbooks/deploy.yml.",
            )
        )
    no_secret = where(lambda env: not unquote_value(env.get("CHAINLIT_AUTH_SECRET", "")).strip())
    if no_secret:
        out.append(
            _finding(
                "auth_secret_missing",
                f"CHAINLIT_AUTH_SECRET is not set in {_places(no_secret)}",
                "Chainlit refuses to start with authentication and no secret to sign the "
                "login tokens, so nobody can log in and History cannot be shown.",
                "Run playbooks/deploy.yml: the chainlit_app role generates the secret once, keeps "
                "it on the controller and writes it to the .env (never change it: that logs every "
                "user out).",
            )
        )
    file_env = parse_env(facts["env_text"]) if facts.get("env_text") is not None else None
    container = facts.get("container") or {}
    if file_env is not None and container:
        container_env = env_list((container.get("Config") or {}).get("Env"))
        differ = sorted(k for k, v in file_env.items() if container_env.get(k) != v)
        differ += sorted(
            k
            for k in ("DATABASE_URL", "CHAINLIT_DATABASE_URL", "CHAINLIT_AUTH_SECRET")
            if k in container_env and k not in file_env
        )
        if differ:
            out.append(
                _finding(
                    "env_file_not_applied",
                    f"the running container's {', '.join(differ)} "
                    f"{'differs' if len(differ) == 1 else 'differ'} from "
                    f"{facts.get('env_file', 'the .env')}",
                    "The .env was changed after the container was created: Docker reads it only "
                    "when it creates the container, so the app still runs with the old values.",
                    "Recreate the container from the .env: run playbooks/deploy.yml.",
                )
            )
    return out


def _got(answer: Mapping[str, Any]) -> str:
    status = answer.get("status")
    got = f"answers {status}" if isinstance(status, int) and status > 0 else "gets no answer"
    return got + f" ({' '.join(str(answer.get('msg', '')).split())[:120]})"


def _container_findings(facts: Mapping[str, Any], name: str, logs: dict[str, str]) -> list[dict]:
    container = facts.get("container")
    if not container:
        return [
            _finding(
                "container_missing",
                f"no container named {name} on this host",
                "The app was never deployed here, or its container was removed.",
                "Run playbooks/deploy.yml (check troubleshoot_app_name if it has another name).",
            )
        ]
    state = container.get("State") or {}
    health = (state.get("Health") or {}).get("Status", "")
    restarts = int(container.get("RestartCount") or 0)
    last_log = logs.get("last_error", "")
    if state.get("Restarting") or state.get("Status") == "restarting" or restarts > 0:
        return [
            _finding(
                "container_restarting",
                f"container {name} is {state.get('Status', 'unknown')} and has restarted "
                f"{restarts} times (last exit code {state.get('ExitCode', '?')})",
                "The app exits soon after it starts and Docker's restart policy starts it again"
                + (f"; its log says: {last_log}" if last_log else "")
                + ". The other findings usually name why.",
                f"Fix the cause the other findings name (`docker logs {name}` shows the error), "
                "then run playbooks/deploy.yml.",
            )
        ]
    if not state.get("Running"):
        return [
            _finding(
                "container_not_running",
                f"container {name} is {state.get('Status', 'unknown')} "
                f"(exit code {state.get('ExitCode', '?')}, "
                f"finished {state.get('FinishedAt', '?')})",
                "It was stopped by hand, or it crashed and its restart policy does not restart it"
                + (f"; its log says: {last_log}" if last_log else "")
                + ".",
                f"Read `docker logs {name}`, fix what it names, then run playbooks/deploy.yml "
                f"(or `docker start {name}`).",
            )
        ]
    if health == "unhealthy":
        checks = (state.get("Health") or {}).get("Log") or [{}]
        output = " ".join(str(checks[-1].get("Output", "")).split())[-200:]
        test = " ".join((container.get("Config") or {}).get("Healthcheck", {}).get("Test") or [])
        answers = (facts.get("direct_health") or facts.get("health") or {}).get("status") == 200
        return [
            _finding(
                "container_unhealthy",
                f"container {name} is running but Docker reports it unhealthy "
                f"({(state.get('Health') or {}).get('FailingStreak', '?')} failed checks in a row)",
                f"Its health check ({test or 'the image HEALTHCHECK'}) fails"
                + (f": {output}" if output else "")
                + (
                    "; yet GET /health answers 200 from the host, so the check itself is wrong"
                    if answers
                    else "; the app hangs, crashed inside the container or does not listen "
                    "where the check looks"
                )
                + ".",
                f"Read `docker logs {name}`; fix what it names, then run playbooks/deploy.yml.",
            )
        ]
    direct = facts.get("direct_health") or {}
    answer = direct or facts.get("health") or {}
    if health != "starting" and answer and answer.get("status") != 200:
        ports = published(container)
        where = ", ".join(f"{p['ip']}:{p['port']}->{p['container_port']}" for p in ports)
        return [
            _finding(
                "app_not_answering",
                f"GET {answer.get('url', '/health')} from the host {_got(answer)}; the container "
                + (f"publishes {where}" if where else "publishes no port"),
                (
                    "The container runs but the app does not answer on the port it publishes: "
                    "it does not listen on the container's port, serves another root path "
                    "(chainlit_app_root_path), or hangs."
                    if direct
                    else "The container runs but the app is not reachable where it is published: "
                    "wrong port or address (chainlit_app_port, chainlit_app_listen_address, root "
                    "path), or the container was created without publishing its port."
                ),
                f"Read `docker logs {name}`; run playbooks/deploy.yml, which releases the app "
                "again as configured.",
            )
        ]
    return []


def _port_of(address: str) -> str:
    """The port of "127.0.0.1:8601" (or of the last of "a:1, b:2"), else ""."""
    match = re.search(r":(\d+)\s*$", (address or "").split(",")[-1])
    return match.group(1) if match else ""


def _nginx_error(text: str) -> str:
    """The line of `nginx -t`'s output that names the error, without its timestamp."""
    lines = [
        NGINX_LOG_PREFIX.sub(r"\1 ", " ".join(line.split()))
        for line in (text or "").splitlines()
        if line.strip()
    ]
    picked = [line for line in lines if re.search(r"\[(?:emerg|alert|crit)\]", line)] or lines
    return picked[0][:200] if picked else ""


def _proxy_service_findings(proxy: Mapping[str, Any], front: str) -> list[dict]:
    """nginx stopped (and why, when its configuration is broken), or running with a
    configuration on disk that would not load again."""
    site_file = proxy.get("site_file", "the app's nginx site")
    config_error = (
        "" if proxy.get("config_ok", True) else _nginx_error(proxy.get("config_test", ""))
    )
    service = str(proxy.get("service") or "").strip()
    if proxy.get("installed") and service != "active":
        return [
            _finding(
                "proxy_down",
                f"nginx, the app's front, is not running (systemctl is-active nginx: "
                f"{service or 'unknown'}): nothing answers on {front}"
                + (f"; `nginx -t` fails: {config_error}" if config_error else ""),
                "nginx was stopped by hand or failed to start"
                + (
                    ": its configuration is broken, so it cannot start"
                    if config_error
                    else " (`journalctl -u nginx` says why)"
                )
                + ". The app's container may be fine, but users reach it only through nginx.",
                (
                    "Correct what `nginx -t` names, then `systemctl start nginx`"
                    if config_error
                    else "`systemctl start nginx`"
                )
                + "; playbooks/deploy.yml also starts it (and rewrites the app's site "
                + f"{site_file}).",
            )
        ]
    if config_error:
        return [
            _finding(
                "proxy_config_invalid",
                f"nginx runs, but its configuration on disk fails `nginx -t`: {config_error}",
                "A file under /etc/nginx was changed since nginx last loaded it: nginx still "
                "serves its old configuration, but the next reload (every release switches with "
                "one) or restart fails, and after a reboot nothing answers.",
                "Correct what `nginx -t` names and check with `nginx -t`; playbooks/deploy.yml "
                f"rewrites only the app's own site {site_file}.",
            )
        ]
    return []


def _upstream_finding(facts: Mapping[str, Any], name: str, front: str) -> dict | None:
    """nginx forwards to a port the serving container does not publish. What nginx
    really uses is the X-Chainlit-Upstream header it adds; without an answer, the site."""
    proxy = facts["proxy"]
    container = facts.get("container") or {}
    site_file = proxy.get("site_file", "the app's nginx site")
    site_ports = nginx_upstream_ports(proxy.get("site"))
    header_port = _port_of(str((facts.get("health") or {}).get("upstream") or ""))
    forwarded = [header_port] if header_port else site_ports
    container_ports = {p["port"] for p in published(container)}
    if not container_ports or not forwarded or set(forwarded) & container_ports:
        return None
    to_next = set(forwarded) & {p["port"] for p in published(facts.get("next_container"))}
    not_reloaded = bool(header_port) and header_port not in site_ports
    only_reload = not_reloaded and bool(set(site_ports) & container_ports)
    if only_reload:
        cause = (
            f"nginx was not reloaded after {site_file} was written (a release interrupted "
            "before its switch): it still forwards to the old port."
        )
    elif to_next:
        cause = (
            f"A release was interrupted after nginx was switched to its new container "
            f"{name}-next and before that was renamed {name}: the container named {name} is "
            "the replaced release."
        )
    else:
        cause = (
            f"The container {name} was recreated by hand (docker run) on another port than "
            "the one nginx forwards to: users get 502 Bad Gateway, or the answers of whatever "
            "listens there."
        )
    return _finding(
        "proxy_upstream_mismatch",
        f"nginx forwards {front} to 127.0.0.1:{', '.join(forwarded)}"
        + (f" ({name}-next publishes it)" if to_next else "")
        + f", but the serving container {name} publishes "
        + (", ".join(f"{p['ip']}:{p['port']}" for p in published(container)) or "no port")
        + (f"; {site_file} names 127.0.0.1:{', '.join(site_ports)}" if not_reloaded else ""),
        cause,
        "`nginx -t && systemctl reload nginx` (the site already names the right port), or run "
        "playbooks/deploy.yml."
        if only_reload
        else "Run playbooks/deploy.yml: it releases the app again on a slot port and points "
        "nginx at it.",
    )


def _route_finding(facts: Mapping[str, Any]) -> dict | None:
    """The app answers on its container's port, but not where users reach it, while
    nginx runs and forwards to the right port: no front at all, or another one."""
    proxy = facts["proxy"]
    health = facts.get("health") or {}
    direct = facts.get("direct_health") or {}
    if direct.get("status") != 200 or health.get("status") == 200:
        return None
    url, site_file = health.get("url", "the app's URL"), proxy.get("site_file", "its site")
    if not proxy.get("installed") or proxy.get("site") is None:
        return _finding(
            "proxy_missing",
            f"GET {url} {_got(health)}, while the app answers on {direct.get('url')}: "
            + (
                "nginx is not installed"
                if not proxy.get("installed")
                else f"nginx has no site for the app ({site_file}: "
                f"{proxy.get('site_error') or 'not found'})"
            ),
            "Nothing forwards the app's address to its container: nginx was removed, or the "
            "app's site was deleted or renamed.",
            "Run playbooks/deploy.yml: it installs nginx, writes the app's site and points it at "
            "the serving container.",
        )
    port = _port_of(urlsplit(url).netloc) or "PORT"
    return _finding(
        "proxy_not_forwarding",
        f"GET {url} {_got(health)}, while the app answers on {direct.get('url')} and "
        f"{site_file} forwards to it",
        "What answers at troubleshoot_app_url is not the app's site: another nginx site or "
        "another process holds that address, or troubleshoot_app_url "
        "(chainlit_app_listen_address, chainlit_app_port, chainlit_app_root_path) is not what "
        "the deployment used.",
        f"`ss -ltnp 'sport = :{port}'` shows who listens there, `nginx -T` which server block "
        "takes it; remove the other one, or run playbooks/deploy.yml with the deployment's "
        "variables.",
    )


def _stale_next_finding(facts: Mapping[str, Any], name: str) -> dict | None:
    nxt = facts.get("next_container")
    if not nxt:
        return None
    ports = ", ".join(f"{p['ip']}:{p['port']}" for p in published(nxt)) or "no port"
    return _finding(
        "stale_next_container",
        f"a container {name}-next exists ({(nxt.get('State') or {}).get('Status', 'unknown')}, "
        f"created {str(nxt.get('Created', '?'))[:19]}, publishes {ports}) beside the serving "
        f"{name}",
        "A release (deploy, rebuild or rollback) was interrupted after it started its new "
        "container and before it renamed it: Ctrl-C, a lost connection, a host restart. It "
        "holds a slot port and memory. (If a release runs right now, this is its new "
        "container: wait for it.)",
        f"`docker rm -f {name}-next`; the next release also removes it before it starts.",
    )


def _proxy_findings(facts: Mapping[str, Any], name: str, container_ok: bool) -> list[dict]:
    """nginx in front of the app: down or broken, forwarding to a port the serving
    container does not publish, missing or bypassed (only said of a container in good
    shape); a release left half done."""
    proxy = facts.get("proxy")
    if not isinstance(proxy, Mapping):
        return []
    url = str((facts.get("health") or {}).get("url", ""))
    front = urlsplit(url).netloc or "the app's address"
    out = _proxy_service_findings(proxy, front)
    mismatch = _upstream_finding(facts, name, front)
    down = any(item["id"] == "proxy_down" for item in out)
    route = None if down or mismatch or not container_ok else _route_finding(facts)
    out += [item for item in (mismatch, route, _stale_next_finding(facts, name)) if item]
    return out


def _image_findings(facts: Mapping[str, Any], logs: dict[str, str]) -> list[dict]:
    out: list[dict] = []
    probe = facts.get("probe")
    image = facts.get("image_name", "the image")
    if facts.get("probe_error"):
        out.append(
            _finding(
                "image_unusable",
                f"cannot run Python in {image}: {facts['probe_error'][:200]}",
                "The image is missing, broken, or has no python on its PATH.",
                "Run playbooks/deploy.yml to build and check the image.",
            )
        )
    if probe:
        if not probe.get("asyncpg"):
            out.append(
                _finding(
                    "asyncpg_missing",
                    f"asyncpg does not import in {image} ({probe.get('asyncpg_error', '')})"
                    + (
                        f"; the app log says: {logs['asyncpg_missing']}"
                        if "asyncpg_missing" in logs
                        else ""
                    ),
                    "Chainlit's data layer talks to PostgreSQL through asyncpg, which chainlit "
                    "does not install (only its custom-data extra does): every data-layer call "
                    "raises ModuleNotFoundError and POST /login answers 500.",
                    "Add asyncpg to the app's requirements.txt (the chainlit_app role adds "
                    "chainlit_app_asyncpg_requirement when it is missing) and run "
                    "playbooks/deploy.yml, which rebuilds and checks the image.",
                )
            )
        expected = facts.get("expected_chainlit_version", "")
        version = probe.get("chainlit_version", "")
        if expected and version != expected:
            out.append(
                _finding(
                    "chainlit_version_mismatch",
                    f"{image} has chainlit {version or '(none)'}, expected {expected}",
                    "The schema migrations are derived from what Chainlit "
                    f"{expected} executes; another version may read or write other columns.",
                    f"Pin chainlit=={expected} in the app's requirements.txt and run "
                    "playbooks/deploy.yml (or set chainlit_app_expected_version after checking "
                    "the schema).",
                )
            )
        if probe.get("persistence_section"):
            out.append(
                _finding(
                    "obsolete_persistence_section",
                    f"{probe.get('app_dir', '/app')}/.chainlit/config.toml in {image} has a "
                    "[persistence] section",
                    "Chainlit 2.x has no [persistence] setting and ignores it: persistence "
                    "switches on with DATABASE_URL. The section misleads whoever reads it.",
                    "Remove the [persistence] section from the app's .chainlit/config.toml and "
                    "run playbooks/deploy.yml.",
                )
            )
    auth = facts.get("auth_config")
    auth_on = None
    if isinstance(auth, Mapping):
        auth_on = bool(
            auth.get("passwordAuth") or auth.get("headerAuth") or auth.get("oauthProviders")
        )
    elif probe:
        auth_on = bool(probe.get("auth_callbacks"))
    if auth_on is False:
        evidence = []
        if isinstance(auth, Mapping):
            evidence.append("GET /auth/config reports no password, header or OAuth login")
        if probe:
            evidence.append(
                f"no {AUTH_CALLBACKS} in the {probe.get('python_files', 0)} Python files of "
                f"{probe.get('app_dir', '/app')}"
            )
        out.append(
            _finding(
                "no_auth_callback",
                "the app has no authentication: " + "; ".join(evidence),
                "Without an auth callback Chainlit writes threads with no user, and "
                "/project/threads answers 401: the History sidebar stays empty.",
                f"Add a @cl.{AUTH_CALLBACKS.replace(', ', ', @cl.').replace(' or ', ' or @cl.')} "
                "to the app (see app/app.py) and run playbooks/deploy.yml.",
            )
        )
    running_image = facts.get("running_image", "")
    expected_image = facts.get("expected_image", "")
    running_id, expected_id = facts.get("running_image_id"), facts.get("expected_image_id")
    stale = (
        running_id != expected_id if running_id and expected_id else running_image != expected_image
    )
    if running_image and expected_image and stale:
        built = facts.get("expected_image_present")
        out.append(
            _finding(
                "stale_image",
                f"the container runs {running_image}, but the current app source "
                f"({facts.get('app_src', '?')}) builds {expected_image}"
                + (" (built, present on the host)" if built else " (not built on this host)"),
                "The container was created from another image than the current source's: an "
                "older build (a cached image) or one built or changed by hand, so a fix in the "
                "source (app, requirements, Dockerfile, base image) is not what runs"
                + ("; the new image exists but the container was not recreated" if built else "")
                + ".",
                "Run playbooks/deploy.yml: it builds the image of the current source under its "
                "hash tag and recreates the container.",
            )
        )
    return out


def _database_findings(facts: Mapping[str, Any], logs: dict[str, str]) -> list[dict]:
    out: list[dict] = []
    db = facts.get("db") or {}
    target = f"{db.get('url_host', '?')}:{db.get('port', '?')}"
    down = []
    if db.get("local") and facts.get("pg_clusters") is not None:
        service = (facts.get("pg_service") or "").strip()
        if service != "active":
            down.append(f"systemctl is-active postgresql: {service or 'unknown'}")
        for line in (facts.get("pg_clusters") or "").splitlines():
            fields = line.split()
            if len(fields) >= 4 and not fields[3].startswith("online"):
                down.append(f"cluster {fields[0]}/{fields[1]} (port {fields[2]}) is {fields[3]}")
    if down:
        out.append(
            _finding(
                "postgresql_down",
                "PostgreSQL on this host is not running: " + "; ".join(down),
                "The server was stopped or failed to start; the app cannot save or read chats "
                "(login may still succeed: Chainlit only logs the failed user upsert).",
                "Start it (`systemctl start postgresql`) and read `journalctl -u "
                "postgresql@*` / the PostgreSQL log for why it stopped; "
                "playbooks/deploy.yml also starts it.",
            )
        )
    tcp = (facts.get("probe") or {}).get("db_tcp")
    schema = facts.get("schema") or {}
    error = " ".join(str(schema.get("msg", "")).split())
    if tcp and not tcp.get("ok") and not down:
        out.append(
            _finding(
                "database_unreachable",
                f"the app container cannot open a TCP connection to {target} "
                f"({tcp.get('error', '')})",
                "PostgreSQL does not listen on the address the container reaches "
                "(listen_addresses), a firewall drops the Docker bridge, or the URL names the "
                "wrong host or port.",
                "Check the URL's host and port, PostgreSQL's listen_addresses and pg_hba.conf for "
                "the Docker bridge (the postgres role sets them) and the firewall; run "
                "playbooks/deploy.yml.",
            )
        )
    if schema.get("schema_ok") is None and error and not down:
        if "password authentication failed" in error or "wrong_db_password" in logs:
            out.append(
                _finding(
                    "wrong_db_password",
                    f"PostgreSQL refuses the password of user {db.get('user', '?')} in the app's "
                    f"DATABASE_URL ({target})",
                    "The password in DATABASE_URL is not the role's password (the URL was edited, "
                    "or the role's password was changed without redeploying the app).",
                    "Run playbooks/deploy.yml: the postgres and chainlit_app roles share one "
                    "generated password (credentials/<host>/postgres-<user>.password).",
                )
            )
        elif re.search(r'database "[^"]*" does not exist', error):
            out.append(
                _finding(
                    "database_missing",
                    f"database {db.get('db', '?')} does not exist on {target}",
                    "The URL names another database, or it was never created or was dropped.",
                    "Run playbooks/deploy.yml (the postgres role creates it).",
                )
            )
        elif re.search(r"refused|timeout|timed out|could not translate|no route", error, re.I):
            if not (tcp and not tcp.get("ok")):
                out.append(
                    _finding(
                        "database_unreachable",
                        f"this host cannot connect to PostgreSQL at {db.get('host', '?')}:"
                        f"{db.get('port', '?')} ({mask_url(error)[:160]})",
                        "PostgreSQL does not listen there, or a firewall drops the connection.",
                        "Check that PostgreSQL runs and listens on that address; run "
                        "playbooks/deploy.yml.",
                    )
                )
        elif "psycopg2" not in error:
            out.append(
                _finding(
                    "database_connect_failed",
                    f"cannot connect to the app's database: {mask_url(error)[:200]}",
                    "PostgreSQL refuses the app's connection for the reason above.",
                    "Fix what the message names (pg_hba.conf, role, sslmode); run "
                    "playbooks/deploy.yml.",
                )
            )
    if schema.get("schema_ok") is False:
        if schema.get("missing_tables"):
            out.append(
                _finding(
                    "schema_tables_missing",
                    "tables missing: " + ", ".join(schema["missing_tables"]),
                    "Chainlit creates no tables; the schema migrations did not run on this "
                    "database, or the tables were dropped. Chats (or feedback) are not saved.",
                    "A database the migrations never ran on: run playbooks/deploy.yml, which "
                    "applies them. Tables dropped after the migration was recorded in "
                    "chainlit_schema_migrations: recreate them as "
                    "roles/chainlit_app/files/schema/ defines them (deploy does not reapply a "
                    "recorded migration), or restore them from a backup.",
                )
            )
        columns = list(schema.get("missing_columns") or []) + [
            str(item.get("column", item)) if isinstance(item, Mapping) else str(item)
            for item in schema.get("mismatched_columns") or []
        ]
        if columns:
            out.append(
                _finding(
                    "schema_columns_missing",
                    "columns missing or of the wrong type: " + ", ".join(columns),
                    "The tables come from another schema (Prisma's, or an older one) or were "
                    "altered: Chainlit 2.12's INSERTs and SELECTs on them fail.",
                    "Add the columns as roles/chainlit_app/files/schema/ defines them (ALTER "
                    "TABLE ... ADD COLUMN, as a new migration for every host), then run "
                    "playbooks/verify.yml.",
                )
            )
        if schema.get("missing_step_types"):
            out.append(
                _finding(
                    "schema_step_types_missing",
                    "StepType labels missing: " + ", ".join(schema["missing_step_types"]),
                    'Steps of those types cannot be saved: the "StepType" enum is older than '
                    "what Chainlit 2.12 writes.",
                    'ALTER TYPE "StepType" ADD VALUE for each (a new migration), then run '
                    "playbooks/deploy.yml.",
                )
            )
    return out


def findings(facts: Mapping[str, Any]) -> list[dict[str, str]]:
    """Every fault the probes show, each with its cause and fix; empty when all is well."""
    name = str(facts.get("container_name", "chainlit"))
    logs = _log_evidence(facts.get("logs", ""))
    sources: dict[str, dict[str, str]] = {}
    if facts.get("env_text") is not None:
        sources[str(facts.get("env_file", "the .env"))] = parse_env(facts["env_text"])
    container = facts.get("container") or {}
    if container:
        sources[f"the container {name}"] = env_list((container.get("Config") or {}).get("Env"))
    out = _container_findings(facts, name, logs)
    out += _proxy_findings(facts, name, container_ok=not out)
    if facts.get("env_text") is None:
        out.append(
            _finding(
                "env_file_missing",
                f"cannot read {facts.get('env_file', 'the .env')}: {facts.get('env_error', '')}",
                "The app was never deployed here, or the file was removed or moved.",
                "Run playbooks/deploy.yml, which writes it (root-owned, 0600).",
            )
        )
    out += _env_findings(facts, sources)
    out += _image_findings(facts, logs)
    out += _database_findings(facts, logs)
    return out


def report(found: Sequence[Mapping[str, str]], notes: Iterable[str] = ()) -> list[str]:
    """The findings as numbered FINDING / CAUSE / FIX lines, then the summary line."""
    lines: list[str] = []
    for number, item in enumerate(found, 1):
        lines += [
            f"{number}. [{item['id']}] FINDING: {item['finding']}",
            f"{' ' * len(str(number))}  CAUSE: {item['cause']}",
            f"{' ' * len(str(number))}  FIX:   {item['fix']}",
        ]
    lines += [f"not checked: {note}" for note in notes if note]
    count = len(found)
    lines.append(
        f"{count} finding{'s' if count != 1 else ''}: " + ", ".join(item["id"] for item in found)
        if count
        else "no problem found"
    )
    return lines


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "troubleshoot_mask_url": mask_url,
            "troubleshoot_database_url": database_url,
            "troubleshoot_db_params": db_params,
            "troubleshoot_direct_url": direct_url,
            "troubleshoot_image_label": image_label,
            "troubleshoot_findings": findings,
            "troubleshoot_report": report,
        }
