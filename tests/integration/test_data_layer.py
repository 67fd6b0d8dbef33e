"""Chainlit's own data layer against the migrated schema: the proof it works.

The real ChainlitDataLayer of the chainlit package this runs with (asyncpg)
writes and reads a user, threads, steps, elements and feedback; the rows are
read back with SQL. Its methods are called directly, so a database error
raises here instead of vanishing in a background task as it would inside a
running server. The schema is migrated for that release (its line's
migrations). test_data_layer_releases.py runs this file again with each
supported minor line's release first on the path.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import chainlit
import pytest
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.chainlit_versions import (
    ELEMENTS_WITHOUT_STORAGE_FROM,
    at_least,
    line,
)
from chainlit.context import ChainlitContext, context_var
from chainlit.data.chainlit_data_layer import ChainlitDataLayer
from chainlit.data.storage_clients.base import BaseStorageClient
from chainlit.element import Pdf, Text
from chainlit.session import HTTPSession
from chainlit.types import Feedback, Pagination, ThreadFilter
from chainlit.user import User
from conftest import Database, apply_schema, load_prisma_fixture

ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"  # the createdAt format the layer parses
START = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
RELEASE = chainlit.__version__ if hasattr(chainlit, "__version__") else ""


# What the releases do differently, read from their data layer's code; none
# of it is a schema difference.
# Before 2.8.4 the data layer saves elements only through a storage client.
NEEDS_STORAGE = bool(RELEASE) and not at_least(RELEASE, ELEMENTS_WITHOUT_STORAGE_FROM)
# 2.7's create_element names GCSStorageClient, imported only with
# google-cloud-storage: with any storage client it raises NameError, without
# one it drops the element. An app on 2.7 saves no element without that package.
try:
    import google.cloud.storage  # noqa: F401

    HAS_GCS = True
except ImportError:
    HAS_GCS = False
SAVES_ELEMENTS = not (line(RELEASE) == "2.7" and not HAS_GCS)
# get_thread returns each step's feedback from 2.6 on.
FEEDBACK_IN_THREAD = not RELEASE or at_least(RELEASE, "2.6.0")
# Renaming keeps the metadata from 2.10 on; 2.9 and older write {} over it
# (update_thread: json.dumps(metadata or {})).
RENAME_KEEPS_METADATA = not RELEASE or at_least(RELEASE, "2.10.0")


def migrate_for_release(database: Database) -> list[str]:
    return apply_schema(database, RELEASE)


class DirectoryStorage(BaseStorageClient):
    """Files in a local directory: the storage an element's row then points to
    (objectKey, url). Only given to the releases that save no element without one."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}

    async def upload_file(self, object_key, data, mime="application/octet-stream", overwrite=True):
        self.files[object_key] = data.encode() if isinstance(data, str) else data
        return {"object_key": object_key, "url": f"https://files.invalid/{object_key}"}

    async def delete_file(self, object_key: str) -> bool:
        return self.files.pop(object_key, None) is not None

    async def get_read_url(self, object_key: str) -> str:
        return f"https://files.invalid/{object_key}"

    async def close(self) -> None:
        return None


def at(seconds: int) -> str:
    return (START + timedelta(seconds=seconds)).strftime(ISO_FORMAT)


def enter_http_context() -> None:
    """What a Chainlit HTTP request sets up; without it the queued methods raise."""
    session = HTTPSession(id=str(uuid.uuid4()), client_type="webapp")
    context_var.set(ChainlitContext(session))


def run_with_layer(database: Database, scenario: Callable[[ChainlitDataLayer], Any]) -> Any:
    async def main() -> Any:
        enter_http_context()
        layer = ChainlitDataLayer(
            database_url=database.dsn,
            storage_client=DirectoryStorage() if NEEDS_STORAGE and SAVES_ELEMENTS else None,
        )
        try:
            return await scenario(layer)
        finally:
            # close() from 2.1 on; 2.0 has cleanup().
            await (layer.close() if hasattr(layer, "close") else layer.cleanup())

    return asyncio.run(main())


async def write_conversation(layer: ChainlitDataLayer, user_id: str, name: str) -> dict[str, str]:
    """One thread as a chat makes it: a user message, a reply, an element, feedback."""
    thread_id, question_id, answer_id = (str(uuid.uuid4()) for _ in range(3))
    await layer.update_thread(
        thread_id=thread_id, name=name, user_id=user_id, metadata={"topic": name}, tags=["demo"]
    )
    await layer.create_step(
        {
            "id": question_id,
            "threadId": thread_id,
            "type": "user_message",
            "name": "alice",
            "output": f"question of {name}",
            "createdAt": at(1),
            "metadata": {},
        }
    )
    await layer.create_step(
        {
            "id": answer_id,
            "threadId": thread_id,
            "parentId": question_id,
            "type": "assistant_message",
            "name": "Assistant",
            "output": "",
            "createdAt": at(2),
            "metadata": {},
        }
    )
    # Streaming ends with an update of the same step.
    await layer.update_step(
        {
            "id": answer_id,
            "threadId": thread_id,
            "type": "assistant_message",
            "name": "Assistant",
            "output": f"answer of {name}",
            "createdAt": at(2),
            "metadata": {"final": True},
            "isError": False,
        }
    )
    await layer.create_element(
        Text(
            name="snippet",
            content="print('hi')",
            language="python",
            for_id=answer_id,
            thread_id=thread_id,
        )
    )
    await layer.create_element(
        Pdf(name="manual", url="https://example.invalid/m.pdf", page=3, for_id=answer_id,
            thread_id=thread_id)
    )  # fmt: skip
    feedback_id = await layer.upsert_feedback(
        Feedback(forId=answer_id, value=1, comment="useful", threadId=thread_id)
    )
    return {"thread": thread_id, "question": question_id, "answer": answer_id, "fb": feedback_id}


def full_round_trip(database: Database) -> None:
    async def scenario(layer: ChainlitDataLayer) -> dict[str, Any]:
        user = await layer.create_user(User(identifier="alice", metadata={"provider": "test"}))
        assert user is not None
        again = await layer.create_user(User(identifier="alice", metadata={"seen": 2}))
        assert again is not None and again.id == user.id
        fetched = await layer.get_user("alice")
        assert fetched is not None and fetched.metadata == {"seen": 2}

        first = await write_conversation(layer, user.id, "first")
        second = await write_conversation(layer, user.id, "second")
        await layer.update_thread(thread_id=first["thread"], name="first, renamed")

        page1 = await layer.list_threads(Pagination(first=1), ThreadFilter(userId=user.id))
        page2 = await layer.list_threads(
            Pagination(first=1, cursor=page1.pageInfo.endCursor), ThreadFilter(userId=user.id)
        )
        found = await layer.list_threads(
            Pagination(first=10), ThreadFilter(userId=user.id, search="renamed")
        )
        thread = await layer.get_thread(first["thread"])
        author = await layer.get_thread_author(first["thread"])
        element = (
            await layer.get_element(first["thread"], thread["elements"][0]["id"])
            if thread["elements"]
            else None
        )
        await layer.delete_thread(first["thread"])
        gone = await layer.get_thread(first["thread"])
        return {
            "user": user,
            "first": first,
            "second": second,
            "page1": page1,
            "page2": page2,
            "found": found,
            "thread": thread,
            "author": author,
            "element": element,
            "gone": gone,
        }

    result = run_with_layer(database, scenario)
    first, second = result["first"], result["second"]

    # One thread per page, the second page from the cursor: both threads.
    # (The order is the release's: "createdAt" before 2.7, "updatedAt" after.)
    pages = [t["id"] for t in result["page1"].data + result["page2"].data]
    assert sorted(pages) == sorted([first["thread"], second["thread"]])
    assert result["page1"].pageInfo.hasNextPage
    assert not result["page2"].pageInfo.hasNextPage
    assert [t["name"] for t in result["found"].data] == ["first, renamed"]
    assert result["author"] == "alice"

    thread = result["thread"]
    assert thread["userIdentifier"] == "alice"
    # Renaming keeps the metadata from 2.10 on; 2.9 and older write {} over
    # it (update_thread: json.dumps(metadata or {})).
    assert thread["metadata"] == ({"topic": "first"} if RENAME_KEEPS_METADATA else {})
    steps = {step["id"]: step for step in thread["steps"]}
    assert steps[first["question"]]["type"] == "user_message"
    assert steps[first["question"]]["output"] == "question of first"
    answer = steps[first["answer"]]
    assert answer["output"] == "answer of first"
    assert answer["parentId"] == first["question"]
    if FEEDBACK_IN_THREAD:
        assert answer["feedback"] == {
            "forId": first["answer"],
            "id": first["fb"],
            "value": 1.0,
            "comment": "useful",
        }
    elements = {element["name"]: element for element in thread["elements"]}
    if SAVES_ELEMENTS:
        assert elements["snippet"]["language"] == "python"
        assert elements["manual"]["page"] == 3
        assert elements["manual"]["mime"] == "application/pdf"
        assert result["element"] is not None
    else:
        assert elements == {}
    assert result["gone"] is None

    # What the database holds, read without Chainlit.
    assert database.query('SELECT identifier FROM "User"') == [("alice",)]
    assert database.query('SELECT name, tags, metadata FROM "Thread"') == [
        ("second", ["demo"], {"topic": "second"})
    ]
    assert database.query('SELECT count(*) FROM "Step" WHERE "threadId" = %s', (first["thread"],))[
        0
    ] == (0,)
    assert database.query(
        'SELECT type::text, output FROM "Step" WHERE "threadId" = %s ORDER BY "startTime"',
        (second["thread"],),
    ) == [("user_message", "question of second"), ("assistant_message", "answer of second")]
    assert database.query(
        'SELECT name, language, page FROM "Element" WHERE "threadId" = %s ORDER BY name',
        (second["thread"],),
    ) == ([("manual", None, 3), ("snippet", "python", None)] if SAVES_ELEMENTS else [])
    assert database.query(
        'SELECT value, comment FROM "Feedback" WHERE "stepId" = %s', (second["answer"],)
    ) == [(1.0, "useful")]


def test_data_layer_round_trip_on_our_schema(database: Database) -> None:
    migrate_for_release(database)
    full_round_trip(database)


def test_data_layer_round_trip_on_upstream_prisma_schema_after_migrations(
    database: Database,
) -> None:
    load_prisma_fixture(database)
    migrate_for_release(database)
    full_round_trip(database)


@pytest.mark.parametrize(
    ("table", "column", "call"),
    [
        ("Element", "language", "element"),
        ("Thread", "tags", "thread"),
        ("Step", "showInput", "step"),
    ],
)
def test_a_missing_column_breaks_the_data_layer(
    database: Database, table: str, column: str, call: str
) -> None:
    """The round trip above is only a proof if a missing column makes it fail."""
    if table == "Element" and not SAVES_ELEMENTS:
        pytest.skip(f"chainlit {RELEASE} writes no element here (needs google-cloud-storage)")
    migrate_for_release(database)
    database.query(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')

    async def scenario(layer: ChainlitDataLayer) -> None:
        user = await layer.create_user(User(identifier="bob"))
        assert user is not None
        await write_conversation(layer, user.id, call)

    with pytest.raises(asyncpg.UndefinedColumnError, match=column):
        run_with_layer(database, scenario)


def test_without_the_schema_login_cannot_record_the_user(database: Database) -> None:
    async def scenario(layer: ChainlitDataLayer) -> None:
        await layer.create_user(User(identifier="carol"))

    with pytest.raises(asyncpg.UndefinedTableError):
        run_with_layer(database, scenario)
