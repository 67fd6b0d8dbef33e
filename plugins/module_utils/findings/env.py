"""Findings about the app's settings: the .env and the running container's
environment (where DATABASE_URL and CHAINLIT_AUTH_SECRET really come from)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils import database_url, dotenv
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.catalogue import (
    entry,
    make,
    run,
)

CONCERN = "settings"
DEPLOY = run("deploy")

entry(
    "env_file_missing",
    CONCERN,
    "troubleshoot cannot read the app's .env",
    "The app was never deployed here, or the file was removed or moved.",
    f"Run {DEPLOY}, which writes it (root-owned, 0600).",
)
entry(
    "wrong_database_variable",
    CONCERN,
    "login works, History stays empty; the .env or the container has CHAINLIT_DATABASE_URL",
    "Chainlit reads only DATABASE_URL; CHAINLIT_DATABASE_URL is read nowhere, so no data layer "
    "starts and nothing is saved (History stays empty).",
    "Rename it to DATABASE_URL (the chainlit_app role writes DATABASE_URL itself and refuses "
    f"CHAINLIT_DATABASE_URL in chainlit_app_env): run {DEPLOY}.",
)
entry(
    "database_url_missing",
    CONCERN,
    "login works, History stays empty; no DATABASE_URL in the app's environment",
    "Without DATABASE_URL (or a @cl.data_layer) Chainlit starts no data layer: chats are not "
    "saved.",
    f"Run {DEPLOY}, which writes DATABASE_URL into the .env and releases the app with it.",
)
entry(
    "database_url_scheme",
    CONCERN,
    "POST /login answers 500, the log says 'invalid DSN'",
    "Chainlit's data layer hands DATABASE_URL to asyncpg, which accepts only postgresql:// or "
    "postgres:// (postgresql+asyncpg:// is SQLAlchemy's form, which asyncpg rejects with "
    "'invalid DSN'). Every data-layer call fails.",
    "Write it as postgresql://user:password@host:port/db (chainlit_app_database_url or the "
    f"chainlit_app_db_* variables) and run {DEPLOY}.",
)
entry(
    "database_url_unencoded",
    CONCERN,
    "nothing is saved; the log names a host made of part of the password, or 'invalid DSN'",
    "The user or password in DATABASE_URL holds reserved characters (@ / # ?) that are not "
    "percent-encoded: asyncpg splits the URL at the first '@' and connects to the wrong host, "
    "port or database, or to none.",
    "Percent-encode them (@ is %40, / is %2F, # is %23, ? is %3F, % is %25), or leave "
    "chainlit_app_database_url empty and let the role build the URL from chainlit_app_db_*: "
    f"run {DEPLOY}.",
)
entry(
    "database_url_loopback",
    CONCERN,
    "nothing is saved; the log says 'Connect call failed ... 127.0.0.1 5432'",
    "DATABASE_URL names localhost (or 127.0.0.1): inside the app's container that is the "
    "container itself, where no PostgreSQL listens.",
    "Use host.docker.internal for a server on the Docker host (chainlit_app_db_host's "
    f"default) or the database host's address, and run {DEPLOY}.",
)
entry(
    "quoted_env_value",
    CONCERN,
    "'invalid DSN', or logins rejected after a redeploy: a .env value is wrapped in quotes",
    "Docker's --env-file passes quotes through literally: the app sees them as part of the "
    "value (a URL '\"postgresql://...\"', a secret with quotes), which is then invalid or not "
    "the one meant.",
    f"Write the values unquoted (the chainlit_app role does, and refuses quotes): run {DEPLOY}.",
)
entry(
    "auth_secret_missing",
    CONCERN,
    "the app does not start: 'You must provide a JWT secret'",
    "Chainlit refuses to start with authentication and no secret to sign the login tokens, so "
    "nobody can log in and History cannot be shown.",
    f"Run {DEPLOY}: the chainlit_app role generates the secret once, keeps it on the controller "
    "and writes it to the .env (never change it: that logs every user out).",
)
entry(
    "env_file_not_applied",
    CONCERN,
    "a change to the .env has no effect on the app",
    "The .env was changed after the container was created: Docker reads it only when it "
    "creates the container, so the app still runs with the old values.",
    f"Release the app again from the .env: run {DEPLOY}.",
)


def _places(places: Sequence[str]) -> str:
    return " and ".join(places)


def sources(facts: Mapping[str, Any]) -> dict[str, dict[str, str]]:
    """The environments the app's settings can come from: the .env file and the
    running container's."""
    found: dict[str, dict[str, str]] = {}
    if facts.get("env_text") is not None:
        found[str(facts.get("env_file", "the .env"))] = dotenv.parse(facts["env_text"])
    container = facts.get("container") or {}
    if container:
        name = str(facts.get("container_name", "chainlit"))
        found[f"the container {name}"] = dotenv.from_list(
            (container.get("Config") or {}).get("Env")
        )
    return found


def findings(facts: Mapping[str, Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if facts.get("env_text") is None:
        out.append(
            make(
                "env_file_missing",
                f"cannot read {facts.get('env_file', 'the .env')}: {facts.get('env_error', '')}",
            )
        )
    found = sources(facts)

    def where(test: Callable[[dict[str, str]], Any]) -> list[str]:
        return [name for name, env in found.items() if test(env)]

    old_name = where(lambda env: "CHAINLIT_DATABASE_URL" in env)
    if old_name:
        without = where(lambda env: "CHAINLIT_DATABASE_URL" in env and not env.get("DATABASE_URL"))
        out.append(
            make(
                "wrong_database_variable",
                f"CHAINLIT_DATABASE_URL is set in {_places(old_name)}"
                + (f"; DATABASE_URL is missing in {_places(without)}" if without else ""),
            )
        )
    missing = where(lambda env: not env.get("DATABASE_URL") and "CHAINLIT_DATABASE_URL" not in env)
    if missing:
        out.append(make("database_url_missing", f"DATABASE_URL is not set in {_places(missing)}"))
    out += _url_findings(found)
    quoted = {name: dotenv.quoted_keys(env) for name, env in found.items()}
    quoted = {name: keys for name, keys in quoted.items() if keys}
    if quoted:
        out.append(
            make(
                "quoted_env_value",
                "quoted values in "
                + "; ".join(f"{name}: {', '.join(keys)}" for name, keys in quoted.items()),
            )
        )
    no_secret = where(lambda env: not dotenv.unquote(env.get("CHAINLIT_AUTH_SECRET", "")).strip())
    if no_secret:
        out.append(
            make("auth_secret_missing", f"CHAINLIT_AUTH_SECRET is not set in {_places(no_secret)}")
        )
    out += _not_applied(facts)
    return out


def _url_findings(found: Mapping[str, Mapping[str, str]]) -> list[dict[str, str]]:
    """Problems of the DATABASE_URL values themselves, by kind, with where they are."""
    by_code: dict[str, dict[str, str]] = {}
    for place, env in found.items():
        if not env.get("DATABASE_URL"):
            continue
        url = dotenv.unquote(env["DATABASE_URL"])
        for code, _ in database_url.container_problems(url):
            detail = database_url.scheme_of(url) + "://" if code == "scheme" else ""
            if code == "loopback_host":
                detail = database_url.parse(url).host
            by_code.setdefault(code, {})[place] = detail
    out = []
    if "scheme" in by_code or "no_scheme" in by_code:
        places = {**by_code.get("no_scheme", {}), **by_code.get("scheme", {})}
        schemes = sorted({d for d in places.values() if d}) or ["no postgresql://"]
        out.append(
            make(
                "database_url_scheme",
                f"DATABASE_URL starts with {', '.join(schemes)} in {_places(list(places))}",
            )
        )
    if "unencoded" in by_code:
        out.append(
            make(
                "database_url_unencoded",
                "the user or password of DATABASE_URL holds unencoded reserved characters in "
                + _places(list(by_code["unencoded"])),
            )
        )
    if "loopback_host" in by_code:
        hosts = sorted(set(by_code["loopback_host"].values()))
        out.append(
            make(
                "database_url_loopback",
                f"DATABASE_URL's host is {', '.join(hosts)} in "
                f"{_places(list(by_code['loopback_host']))}",
            )
        )
    return out


def _not_applied(facts: Mapping[str, Any]) -> list[dict[str, str]]:
    container = facts.get("container") or {}
    if facts.get("env_text") is None or not container:
        return []
    file_env = dotenv.parse(facts["env_text"])
    container_env = dotenv.from_list((container.get("Config") or {}).get("Env"))
    differ = sorted(k for k, v in file_env.items() if container_env.get(k) != v)
    differ += sorted(
        k
        for k in ("DATABASE_URL", "CHAINLIT_DATABASE_URL", "CHAINLIT_AUTH_SECRET")
        if k in container_env and k not in file_env
    )
    if not differ:
        return []
    return [
        make(
            "env_file_not_applied",
            f"the running container's {', '.join(differ)} "
            f"{'differs' if len(differ) == 1 else 'differ'} from "
            f"{facts.get('env_file', 'the .env')}",
        )
    ]
