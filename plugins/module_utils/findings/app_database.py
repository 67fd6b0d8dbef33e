"""Findings about the database as the app itself reaches it: what the probe in
the app's container (module_utils/app_db_probe.py) saw, by exception and
SQLSTATE, mapped to cause and fix. Host-side evidence (the role's and the
database's settings, the pg_hba line, the server's log), when troubleshoot has
it, refines the cause where the client alone cannot tell (a 28P01 is a wrong,
an expired or a non-SCRAM password alike)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.chainlit_deploy.stack.plugins.module_utils.findings.catalogue import (
    entry,
    make,
    run,
)

CONCERN = "app's database connection"
DEPLOY = run("deploy")
RELEASE_AGAIN = f"{DEPLOY} (it releases the app again, which opens new connections)"

# --- Before PostgreSQL answers --------------------------------------------------------
entry(
    "database_refused",
    CONCERN,
    "nothing is saved; the log says 'Connect call failed ... 5432'",
    "Nothing accepts connections where the app's DATABASE_URL points, as the container "
    "reaches it: PostgreSQL is down, does not listen on that address (its listen_addresses "
    "lacks the Docker bridge gateway, e.g. after a reboot that started it before Docker), or "
    "the URL names the wrong host or port.",
    "`ss -ltn 'sport = :5432'` on the database host shows where it listens; "
    f"{DEPLOY} sets listen_addresses and restarts PostgreSQL when it must.",
)
entry(
    "database_host_unresolvable",
    CONCERN,
    "nothing is saved; the log says 'Name or service not known'",
    "The app's container cannot resolve the database host of DATABASE_URL. "
    "host.docker.internal exists in a container only when it was created with "
    "--add-host host.docker.internal:host-gateway (the role does this), and only while Docker "
    "knows the gateway's address: an engine restarted with live-restore while containers ran "
    "forgets it, and containers created afterwards get '<nil> host.docker.internal' in "
    "/etc/hosts (moby/moby#42753). Another name needs DNS the container can use.",
    f"Release the app as the role does: run {DEPLOY} (its docker role names host-gateway-ip "
    "in daemon.json); for another host, fix its name or use its address.",
)
entry(
    "database_timeout",
    CONCERN,
    "login and History hang for a minute, then fail",
    "Connections from the app's container to the database are dropped on the way (a firewall, "
    "e.g. ufw's default deny on the Docker bridge), so asyncpg waits until it gives up.",
    "Allow the app's network to the database port (`ufw allow in on chainlit0 to any port "
    "5432 proto tcp` for the app's bridge, or the matching nftables rule).",
)
entry(
    "database_ssl_refused",
    CONCERN,
    "nothing is saved; the log says 'rejected SSL upgrade'",
    "DATABASE_URL asks for SSL (sslmode=require) and the server does not offer it (ssl = off), "
    "or a pre-authentication refusal hides behind that message.",
    f"Turn SSL on in PostgreSQL, or set chainlit_app_db_sslmode to prefer; run {DEPLOY}.",
)
entry(
    "database_ssl_unverified",
    CONCERN,
    "nothing is saved; the log says CERTIFICATE_VERIFY_FAILED or 'root certificate file'",
    "sslmode=verify-ca/verify-full, and the server's certificate cannot be verified from the "
    "container: no CA given (sslrootcert), a self-signed certificate, or a name mismatch.",
    "Give the CA (sslrootcert in the URL, the file mounted in the container) or use "
    f"sslmode=require; run {DEPLOY}.",
)
entry(
    "database_url_unknown_parameter",
    CONCERN,
    "nothing is saved; the log says 'unrecognized configuration parameter'",
    "DATABASE_URL carries a query parameter of libpq or Prisma (schema=, connect_timeout=, "
    "pgbouncer=): asyncpg sends every unknown parameter to the server as a setting, which "
    "refuses it.",
    "Remove the parameter from chainlit_app_database_url (a search path goes in "
    f"options=-csearch_path%3D...); run {DEPLOY}.",
)
# --- PostgreSQL refuses the connection -----------------------------------------------
entry(
    "pg_hba_no_entry",
    CONCERN,
    "nothing is saved; the log says 'no pg_hba.conf entry for host'",
    "pg_hba.conf has no line admitting the app's connection (its address, user and database): "
    "the line for the container's network was removed, or the container runs on a network "
    "pg_hba.conf does not list (such as Docker's default bridge, when it was recreated by hand "
    "with a plain `docker run`: only the app's network, chainlit, is admitted). A login from "
    "the database host itself matches another line, so it does not show this.",
    f"Run {DEPLOY}: the postgres role writes pg_hba.conf for postgres_app_networks (the app's "
    "network), and the app role releases the container on that network "
    "(chainlit_app_docker_network).",
)
entry(
    "pg_hba_rejects",
    CONCERN,
    "nothing is saved; the log says 'pg_hba.conf rejects connection'",
    "A reject line of pg_hba.conf matches the app's connection before any line that admits it.",
    f"Remove the reject line, or run {DEPLOY}, which writes pg_hba.conf anew.",
)
entry(
    "role_nologin",
    CONCERN,
    "nothing is saved; the log says 'is not permitted to log in'",
    "The app's database role has NOLOGIN.",
    f"`ALTER ROLE <role> LOGIN`; {DEPLOY} converges the role's attributes.",
)
entry(
    "role_password_expired",
    CONCERN,
    "nothing is saved; the log says 'password authentication failed' though the password is right",
    "The app's database role has a password that expired (VALID UNTIL in the past): "
    "PostgreSQL refuses it like a wrong one, and says why only in its own log.",
    f"`ALTER ROLE <role> VALID UNTIL 'infinity'`; {DEPLOY} converges it.",
)
entry(
    "connect_privilege_revoked",
    CONCERN,
    "nothing is saved; the log says 'permission denied for database'",
    "The app's role lost the CONNECT privilege on its database (a hardening script's "
    "REVOKE ALL ON DATABASE ... FROM PUBLIC).",
    f"`GRANT CONNECT ON DATABASE <db> TO <role>`; {DEPLOY} grants it.",
)
entry(
    "database_not_accepting_connections",
    CONCERN,
    "nothing is saved; the log says 'is not currently accepting connections'",
    "The database has ALLOW_CONNECTIONS false (left over from maintenance).",
    f"`ALTER DATABASE <db> ALLOW_CONNECTIONS true`; {DEPLOY} converges it.",
)
entry(
    "connection_limit_reached",
    CONCERN,
    "nothing is saved now and then; the log says 'too many connections'",
    "PostgreSQL has no connection slot left for the app: the role's or the database's "
    "CONNECTION LIMIT is below what the app opens (asyncpg's pool opens 10 per app process, a "
    "new release 10 more), or max_connections is used up by other clients.",
    "`SELECT client_addr, usename, count(*) FROM pg_stat_activity GROUP BY 1, 2` shows who "
    f"holds them; {DEPLOY} lifts the app role's and database's limits; raise "
    "postgres_max_connections for the rest.",
)
entry(
    "database_starting_or_stopping",
    CONCERN,
    "nothing is saved; the log says 'the database system is starting up' or 'shutting down'",
    "PostgreSQL is starting, stopping or recovering; if it stays so, its crash recovery "
    "loops (a full disk, a damaged file).",
    "Wait a minute; else read the PostgreSQL log (`/var/log/postgresql/`) for the cause.",
)
# --- PostgreSQL answers, the session cannot work -------------------------------------
entry(
    "tables_not_visible",
    CONCERN,
    "nothing is saved; the log says 'relation \"User\" does not exist' though the tables exist",
    "The app's session does not see Chainlit's tables: its search_path (set for the role or "
    "the database) leaves out the schema they are in, or the role lost USAGE on that schema.",
    f"`ALTER ROLE <role> RESET search_path`, `GRANT USAGE ON SCHEMA public TO <role>`; {DEPLOY} "
    "converges both.",
)
entry(
    "table_privileges_missing",
    CONCERN,
    "History shows old chats but new ones are not saved; the log says 'permission denied for "
    "table'",
    "The app's role may not read or write Chainlit's tables: they belong to another role (the "
    "schema applied as postgres, a restore) or a privilege was revoked.",
    f"Run {DEPLOY}: it gives the tables back to the app's role and grants its privileges.",
)
entry(
    "read_only_sessions",
    CONCERN,
    "old chats show, new ones are never saved; the log says 'read-only transaction'",
    "The app's sessions are read-only: default_transaction_read_only is on for its role or "
    "database, or DATABASE_URL points at a standby (a replica after a failover).",
    f"Run {DEPLOY}, which resets the role's and database's settings; a standby: point the URL "
    "at the primary.",
)
entry(
    "statement_timeout_too_small",
    CONCERN,
    "some chats are not saved; the log says 'canceling statement due to statement timeout'",
    "A statement_timeout set for the app's role or database cancels the data layer's writes.",
    f"`ALTER ROLE <role> RESET statement_timeout`; {DEPLOY} resets the role's settings.",
)
entry(
    "user_identifier_unique_missing",
    CONCERN,
    "login works, History answers 404 'User not found'; the log says 'no unique or exclusion "
    "constraint matching the ON CONFLICT'",
    'The unique index on "User".identifier is gone: Chainlit\'s upsert of the user at login '
    "fails (only logged), so no user is ever saved and no thread can be listed.",
    f"Run {DEPLOY}: the schema module finds the index missing and applies the schema again.",
)
entry(
    "chat_tables_locked",
    CONCERN,
    "chats hang, then fail; the log says 'lock timeout'",
    "A long maintenance statement (ALTER TABLE, VACUUM FULL, a LOCK) holds a lock on "
    "Chainlit's tables.",
    "`SELECT pid, pg_blocking_pids(pid), query FROM pg_stat_activity WHERE wait_event_type = "
    "'Lock'` names the blocker: let it finish or end it (pg_terminate_backend).",
)
entry(
    "database_disk_full",
    CONCERN,
    "chats are not saved; the log says 'No space left on device'",
    "The database host's disk (or the tablespace of Chainlit's tables) is full.",
    "Free space under /var/lib/postgresql (old WAL from a stuck replica slot, logs, dumps in "
    "/var/backups).",
)
entry(
    "writes_blocked",
    CONCERN,
    "chats are not saved; the log names a check constraint, a foreign key or a trigger",
    "A constraint or trigger that is not Chainlit's refuses its rows (a check added by hand, "
    "an audit or 'freeze' trigger, rows deleted under live sessions).",
    'Drop or disable what the message names (`\\d+ "Thread"` lists them); for a foreign key, '
    "users log in again.",
)
entry(
    "schema_recreated_under_running_app",
    CONCERN,
    "every new message fails after a restore or migration; the log says 'cache lookup failed "
    "for type'",
    'The schema (its "StepType" enum) was dropped and created again while the app ran: its '
    "connections keep the old type, and Chainlit only renews them on a connection error.",
    f"Restart the app's connections: {RELEASE_AGAIN}, or `docker restart <container>`.",
)
entry(
    "database_write_failed",
    CONCERN,
    "chats are not saved",
    "PostgreSQL refuses the app's writes for the reason quoted.",
    "Fix what the message names; the PostgreSQL log has the statement.",
)
entry(
    "database_connect_refused",
    CONCERN,
    "nothing is saved; PostgreSQL refuses the app's connection",
    "PostgreSQL refuses the app's connection for the reason quoted.",
    f"Fix what the message names (role, database, pg_hba.conf, sslmode); run {DEPLOY}.",
)
entry(
    "app_db_probe_failed",
    CONCERN,
    "troubleshoot cannot run its probe in the app's container",
    "The container is not running, has no Python on its PATH, or Docker refused the exec.",
    "The container's own finding (stopped, restarting) names why; else `docker exec <container> "
    "python -V`.",
)

# Where in the probe a failure happened, and which finding names it.
NETWORK = {
    "ConnectionRefusedError": "database_refused",
    "gaierror": "database_host_unresolvable",
    "TimeoutError": "database_timeout",
    "CancelledError": "database_timeout",
    "SSLCertVerificationError": "database_ssl_unverified",
}
SQLSTATE_AT_CONNECT = {
    "28P01": "wrong_db_password",
    "3D000": "database_missing",
    "55000": "database_not_accepting_connections",
    "53300": "connection_limit_reached",
    "57P03": "database_starting_or_stopping",
    "42704": "database_url_unknown_parameter",
}
SQLSTATE_IN_SESSION = {
    "42501": "table_privileges_missing",
    "25006": "read_only_sessions",
    "57014": "statement_timeout_too_small",
    "42P10": "user_identifier_unique_missing",
    "22P02": "schema_step_types_missing",
    "42703": "schema_columns_missing",
    "55P03": "chat_tables_locked",
    "53100": "database_disk_full",
    "XX000": "schema_recreated_under_running_app",
    "P0001": "writes_blocked",
}


def _describe(failure: Mapping[str, Any]) -> str:
    state = f"SQLSTATE {failure['sqlstate']}, " if failure.get("sqlstate") else ""
    detail = f" ({failure['detail']})" if failure.get("detail") else ""
    return f"{failure.get('class', '?')}: {state}{failure.get('message', '')}{detail}"


# What PostgreSQL says when it refuses a login, whichever driver reports it
# (asyncpg in the app, psycopg2 on the host): the message names the cause.
REFUSALS = (
    (re.compile(r"no pg_hba\.conf entry"), "pg_hba_no_entry"),
    (re.compile(r"pg_hba\.conf rejects connection"), "pg_hba_rejects"),
    (re.compile(r"is not permitted to log in"), "role_nologin"),
    (re.compile(r"password authentication failed"), "wrong_db_password"),
    (re.compile(r"permission denied for database"), "connect_privilege_revoked"),
    (re.compile(r"is not currently accepting connections"), "database_not_accepting_connections"),
    (
        re.compile(r"too many connections|remaining connection slots|too many clients"),
        "connection_limit_reached",
    ),
    (re.compile(r'database "[^"]*" does not exist'), "database_missing"),
    (
        re.compile(r"the database system is (starting|shutting|in recovery)"),
        "database_starting_or_stopping",
    ),
    (re.compile(r"unrecognized configuration parameter"), "database_url_unknown_parameter"),
)


def refusal_finding_id(message: str) -> str:
    """The catalogue id of a login PostgreSQL refused, by its message; "" if none."""
    return next((fid for pattern, fid in REFUSALS if pattern.search(message or "")), "")


def connect_finding_id(failure: Mapping[str, Any]) -> str:
    """The catalogue id of a failed connection, by message, SQLSTATE and class."""
    sqlstate, message = failure.get("sqlstate") or "", failure.get("message") or ""
    refused = refusal_finding_id(message)
    if refused:
        return refused
    if sqlstate in ("28000", "42501"):
        return "database_connect_refused"
    if sqlstate in SQLSTATE_AT_CONNECT:
        return SQLSTATE_AT_CONNECT[sqlstate]
    if failure.get("class") in NETWORK:
        return NETWORK[failure["class"]]
    if "rejected SSL upgrade" in message:
        return "database_ssl_refused"
    if "root certificate" in message or "CERTIFICATE_VERIFY_FAILED" in message:
        return "database_ssl_unverified"
    if re.search(r"Connect call failed|Errno 111", message):
        return "database_refused"
    if "invalid DSN" in message:
        return "database_url_scheme"
    if "invalid literal for int" in message:
        return "database_url_unencoded"
    return "database_connect_refused"


def session_finding_id(failure: Mapping[str, Any]) -> str:
    sqlstate = failure.get("sqlstate") or ""
    if sqlstate == "42P01":
        return "schema_tables_missing"
    if sqlstate.startswith("23"):
        return "writes_blocked"
    return SQLSTATE_IN_SESSION.get(sqlstate, "database_write_failed")


def first_failure(probe: Mapping[str, Any]) -> tuple[str, str, Mapping[str, Any]] | None:
    """(stage, what, error) of the first thing that failed, or None."""
    if probe.get("exec_error"):
        return "exec", "", {"class": "DockerExec", "message": probe["exec_error"]}
    if not probe.get("asyncpg", {}).get("ok", True):
        return "asyncpg", "", probe["asyncpg"].get("error", {})
    if not probe.get("database_url_set", True):
        return "url", "", {}
    connect = probe.get("connect") or {}
    if not connect.get("ok"):
        return "connect", "", connect.get("error", {})
    for table, read in (probe.get("tables") or {}).items():
        if not read.get("ok"):
            return "read", table, read.get("error", {})
    write = probe.get("write") or {}
    if not write.get("ok"):
        return "write", write.get("stage", ""), write.get("error", {})
    return None


def assess(probe: Mapping[str, Any], container: str) -> tuple[bool, list[dict[str, str]], str]:
    """Whether the app's connection works, the finding for what failed first,
    and a one-line summary. Findings of the app's settings (DATABASE_URL) and
    image (asyncpg) are named by their own concerns; here they give no finding."""
    failed = first_failure(probe)
    if failed is None:
        session = probe.get("session") or {}
        return (
            True,
            [],
            f"{container} connects as {session.get('user', '?')} to {session.get('database', '?')}"
            f" (PostgreSQL {session.get('server_version', '?')}), reads every Chainlit table "
            "and writes a chat (rolled back)",
        )
    stage, what, failure = failed
    where = {
        "exec": f"cannot run the probe in {container}",
        "asyncpg": f"asyncpg does not import in {container}",
        "url": f"{container} has no DATABASE_URL",
        "connect": f"{container} cannot connect to its database",
        "read": f'{container} cannot read "{what}"',
        "write": f"{container} cannot write {what}",
    }[stage]
    summary = f"{where}: {_describe(failure)}" if failure else where
    if stage in ("asyncpg", "url"):
        return False, [], summary
    if stage == "exec":
        fid = "app_db_probe_failed"
    elif stage == "connect":
        fid = connect_finding_id(failure)
    else:
        fid = session_finding_id(failure)
    return False, [{"id": fid, "finding": summary}], summary


def findings(facts: Mapping[str, Any], named: set[str]) -> list[dict[str, str]]:
    """The app-side findings, with host-side evidence where it tells more.
    A cause another concern has already named (``named``: a bad URL, a stopped
    server, missing tables) is not named again."""
    probe = facts.get("app_db")
    if not isinstance(probe, Mapping):
        return []
    name = str(facts.get("container_name", "chainlit"))
    _, raw, _ = assess(probe, name)
    evidence = facts.get("db_evidence") or {}
    out = []
    for item in raw:
        fid = refine(item["id"], evidence, facts)
        if fid in named or (named & (URL_FINDINGS | CONNECT_FINDINGS) and fid in CONNECT_FINDINGS):
            continue
        out.append(make(fid, item["finding"] + _evidence_note(evidence, fid), name=name))
    return out


# Findings of the app's settings that explain any failure to connect.
URL_FINDINGS = {
    "database_url_scheme",
    "database_url_unencoded",
    "database_url_loopback",
    "quoted_env_value",
    "wrong_database_variable",
    "database_url_missing",
    "postgresql_down",
    "docker_engine_down",
}
CONNECT_FINDINGS = {
    "database_unreachable",
    "database_refused",
    "database_host_unresolvable",
    "database_ssl_refused",
    "database_timeout",
    "database_connect_refused",
    "wrong_db_password",
    "database_url_scheme",
    "database_url_unencoded",
}


def refine(fid: str, evidence: Mapping[str, Any], facts: Mapping[str, Any]) -> str:
    """What the server side says the client could not tell apart."""
    role = evidence.get("role") or {}
    if fid == "wrong_db_password" and role.get("password_expired"):
        return "role_password_expired"
    if fid == "schema_tables_missing" and (facts.get("schema") or {}).get("schema_ok"):
        return "tables_not_visible"
    return fid


def _evidence_note(evidence: Mapping[str, Any], fid: str) -> str:
    lines = evidence.get("log_lines") or []
    return f"; the PostgreSQL log says: {lines[-1]}" if lines and fid != "database_refused" else ""
