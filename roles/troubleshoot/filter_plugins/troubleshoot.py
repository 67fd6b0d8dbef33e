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
        answers = (facts.get("health") or {}).get("status") == 200
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
    answer = facts.get("health") or {}
    if health != "starting" and answer and answer.get("status") != 200:
        status = answer.get("status")
        ports = (container.get("NetworkSettings") or {}).get("Ports") or {}
        published = ", ".join(
            f"{binding.get('HostIp') or '0.0.0.0'}:{binding.get('HostPort')}->{port}"
            for port, bindings in sorted(ports.items())
            for binding in bindings or []
        )
        return [
            _finding(
                "app_not_answering",
                f"GET {answer.get('url', '/health')} from the host "
                + (
                    f"answers {status}"
                    if isinstance(status, int) and status > 0
                    else "gets no answer"
                )
                + f" ({' '.join(str(answer.get('msg', '')).split())[:120]}); the container "
                + (f"publishes {published}" if published else "publishes no port"),
                "The container runs but the app is not reachable where it is published: wrong "
                "port or address (chainlit_app_port, chainlit_app_listen_address, root path) or a "
                "proxy in the way.",
                "Compare the published port with troubleshoot_app_url; run playbooks/deploy.yml to "
                "publish it as configured.",
            )
        ]
    return []


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
    if running_image and expected_image and running_image != expected_image:
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
            "troubleshoot_findings": findings,
            "troubleshoot_report": report,
        }
