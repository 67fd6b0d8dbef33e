"""Probe of the app's database from the app's own side: run with the image's
Python inside the app's container (``docker exec -i <container> python -``,
this file on stdin), with the container's own DATABASE_URL and its asyncpg,
exactly as Chainlit's data layer connects. Standalone: it imports nothing of
the collection, only the standard library and asyncpg.

It connects, reads the session's settings, reads every Chainlit table, and
writes a user, a thread, steps of each kind, an element and feedback inside
a transaction that is rolled back (nothing persists). It prints one JSON
object; every error is reported with its class, SQLSTATE and message, the
password cut out of every message.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import uuid

TABLES = ("User", "Thread", "Step", "Element", "Feedback")
# The statements Chainlit's ChainlitDataLayer runs, in their shape (the
# upserts' ON CONFLICT targets and the "StepType" cast included).
USER_SQL = (
    'INSERT INTO "User" (id, identifier, metadata, "createdAt", "updatedAt") '
    "VALUES ($1, $2, '{}'::jsonb, now(), now()) "
    "ON CONFLICT (identifier) DO UPDATE SET metadata = EXCLUDED.metadata"
)
THREAD_SQL = (
    'INSERT INTO "Thread" (id, name, "userId", metadata, "createdAt", "updatedAt") '
    "VALUES ($1, 'chainlit-deploy probe', $2, '{}'::jsonb, now(), now()) "
    "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name"
)
STEP_SQL = (
    'INSERT INTO "Step" (id, "threadId", name, type, input, output, metadata, '
    '"startTime", "endTime", "showInput", "isError") '
    "VALUES ($1, $2, 'probe', $3::\"StepType\", '', 'probe', '{}'::jsonb, now(), now(), "
    "'json', false) ON CONFLICT (id) DO UPDATE SET output = EXCLUDED.output"
)
ELEMENT_SQL = (
    'INSERT INTO "Element" (id, "threadId", "stepId", metadata, name, display, mime) '
    "VALUES ($1, $2, $3, '{}'::jsonb, 'probe', 'inline', 'text/plain') "
    "ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name"
)
FEEDBACK_SQL = (
    'INSERT INTO "Feedback" (id, "stepId", name, value) VALUES ($1, $2, \'user_feedback\', 1) '
    "ON CONFLICT (id) DO UPDATE SET value = EXCLUDED.value"
)
STEP_TYPES = ("user_message", "assistant_message", "run", "tool", "llm")
SETTINGS = (
    "default_transaction_read_only",
    "statement_timeout",
    "search_path",
    "lock_timeout",
    "default_transaction_isolation",
    "TimeZone",
)


def secret_parts(url: str) -> list[str]:
    """The password region of the URL (from the first ':' after the user to the
    last '@') and its pieces, longest first: what no message may show."""
    rest = url.split("://", 1)[-1]
    at = rest.rfind("@")
    if at < 0 or ":" not in rest[:at]:
        return []
    secret = rest[:at].split(":", 1)[1]
    pieces = {secret}
    for sep in "@/#?:":
        pieces.update(p for p in secret.split(sep) if len(p) >= 2)
    return sorted(pieces, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return " ".join(text.split())[:500]


def error(exc: BaseException, secrets: list[str]) -> dict:
    return {
        "class": type(exc).__name__,
        "module": type(exc).__module__,
        "sqlstate": getattr(exc, "sqlstate", None) or "",
        "message": redact(str(exc), secrets),
        "detail": redact(str(getattr(exc, "detail", "") or ""), secrets),
        "hint": redact(str(getattr(exc, "hint", "") or ""), secrets),
    }


async def probe(url: str, timeout: float, secrets: list[str]) -> dict:
    import asyncpg

    result: dict = {"connect": {"ok": False}, "session": {}, "tables": {}, "write": {}}
    try:
        conn = await asyncpg.connect(url, timeout=timeout)
    except BaseException as exc:  # every failure is a result
        result["connect"] = {"ok": False, "error": error(exc, secrets)}
        return result
    result["connect"] = {"ok": True}
    try:
        row = await conn.fetchrow(
            "SELECT current_user AS user, current_database() AS database, "
            "current_schema() AS schema, pg_is_in_recovery() AS in_recovery, "
            "host(inet_client_addr()) AS client_addr, "
            "current_setting('server_version') AS server_version"
        )
        result["session"] = dict(row)
        for name in SETTINGS:
            result["session"][name] = await conn.fetchval("SELECT current_setting($1)", name)
    except BaseException as exc:
        result["session"]["error"] = error(exc, secrets)
    for table in TABLES:
        try:
            await conn.fetchval(f'SELECT count(*) FROM (SELECT 1 FROM "{table}" LIMIT 1) AS t')
            result["tables"][table] = {"ok": True}
        except BaseException as exc:
            result["tables"][table] = {"ok": False, "error": error(exc, secrets)}
    result["write"] = await rolled_back_write(conn, secrets)
    await conn.close()
    return result


def writes() -> list[tuple[str, str, tuple[str, ...]]]:
    """(what, statement, arguments) of one chat's rows, each kind of step once."""
    user, thread, step, element, feedback = (str(uuid.uuid4()) for _ in range(5))
    rows = [
        ("User", USER_SQL, (user, f"chainlit-deploy-probe-{user[:8]}")),
        ("Thread", THREAD_SQL, (thread, user)),
    ]
    rows += [
        (f"Step ({kind})", STEP_SQL, (step if n == 0 else str(uuid.uuid4()), thread, kind))
        for n, kind in enumerate(STEP_TYPES)
    ]
    rows += [
        ("Element", ELEMENT_SQL, (element, thread, step)),
        ("Feedback", FEEDBACK_SQL, (feedback, step)),
    ]
    return rows


async def rolled_back_write(conn, secrets: list[str]) -> dict:
    """Write one chat's rows as Chainlit does, then roll it all back."""
    stage = "BEGIN"
    transaction = conn.transaction()
    try:
        await transaction.start()
        for what, sql, args in writes():
            stage = what
            await conn.execute(sql, *args)
        return {"ok": True}
    except BaseException as exc:
        return {"ok": False, "stage": stage, "error": error(exc, secrets)}
    finally:
        # It may not have started, or be aborted already: nothing to undo then.
        with contextlib.suppress(BaseException):
            await transaction.rollback()


def main() -> None:
    options = json.loads(sys.argv[1]) if len(sys.argv) > 1 else {}
    url = os.environ.get("DATABASE_URL", "")
    out: dict = {"database_url_set": bool(url)}
    try:
        import asyncpg  # noqa: F401
    except BaseException as exc:
        out["asyncpg"] = {"ok": False, "error": error(exc, [])}
        print(json.dumps(out))
        return
    out["asyncpg"] = {"ok": True}
    if url:
        secrets = secret_parts(url)
        out.update(asyncio.run(probe(url, float(options.get("timeout", 10)), secrets)))
    print(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
