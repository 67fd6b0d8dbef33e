"""An upgrade of Chainlit keeps the chats: the data layer of an older release
writes a conversation on the schema migrated for it; the schema then moves
forward for the pinned release (only the migrations it lacks, as role
chainlit_app does on deploy) and the pinned release's own data layer reads the
conversation back, resumes it and renames it.

The older releases are real wheels from the package index (see
test_data_layer_releases.py), each writing through its own ChainlitDataLayer.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import COLLECTIONS_DIR, ROOT, Database, apply_schema
from test_data_layer import run_with_layer
from test_data_layer_releases import PINNED, release_env

SEED = """
import asyncio, json, sys
import test_data_layer as t
from chainlit.data.chainlit_data_layer import ChainlitDataLayer
from chainlit.user import User

async def main():
    t.enter_http_context()
    storage = t.DirectoryStorage() if t.NEEDS_STORAGE and t.SAVES_ELEMENTS else None
    layer = ChainlitDataLayer(database_url=sys.argv[1], storage_client=storage)
    try:
        user = await layer.create_user(User(identifier="alice", metadata={"since": "old"}))
        ids = await t.write_conversation(layer, user.id, "written before the upgrade")
    finally:
        await (layer.close() if hasattr(layer, "close") else layer.cleanup())
    print(json.dumps({"user": user.id, **ids}))

asyncio.run(main())
"""


@pytest.mark.parametrize(
    ("old", "migrations"),
    [
        ("2.0.603", ["0002_chainlit_2_6_thread_metadata_default"]),
        ("2.5.5", ["0002_chainlit_2_6_thread_metadata_default"]),
        ("2.8.5", []),
    ],
)
def test_chats_written_by_an_older_release_survive_the_upgrade(
    old: str, migrations: list[str], database: Database, tmp_path: Path
) -> None:
    before = apply_schema(database, old)
    assert before[0] == "0001_chainlit_2_0_base" and not set(before) & set(migrations)

    app_root, env = release_env(old, tmp_path)
    env["PYTHONPATH"] = ":".join(
        [
            env["PYTHONPATH"],
            str(COLLECTIONS_DIR),
            str(ROOT / "tests"),
            str(ROOT / "tests" / "integration"),
        ]
    )
    seeded = subprocess.run(
        [sys.executable, "-c", SEED, database.dsn],
        cwd=app_root, env=env, capture_output=True, text=True,
    )  # fmt: skip
    assert seeded.returncode == 0, seeded.stdout[-2000:] + seeded.stderr[-4000:]
    ids = json.loads(seeded.stdout.strip().splitlines()[-1])

    # What deploy does when the app's pin moves to the pinned release.
    assert apply_schema(database, PINNED) == migrations
    assert apply_schema(database, PINNED) == []

    async def resume(layer: Any) -> dict[str, Any]:
        thread = await layer.get_thread(ids["thread"])
        author = await layer.get_thread_author(ids["thread"])
        await layer.update_thread(thread_id=ids["thread"], name="renamed after the upgrade")
        renamed = await layer.get_thread(ids["thread"])
        user = await layer.get_user("alice")
        return {"thread": thread, "author": author, "renamed": renamed, "user": user}

    got = run_with_layer(database, resume)
    thread = got["thread"]
    assert thread is not None, f"the thread {old} wrote is gone after the upgrade"
    assert thread["name"] == "written before the upgrade"
    assert got["author"] == "alice"
    outputs = {step["id"]: step["output"] for step in thread["steps"]}
    assert outputs[ids["question"]] == "question of written before the upgrade"
    assert outputs[ids["answer"]] == "answer of written before the upgrade"
    assert got["renamed"]["name"] == "renamed after the upgrade"
    assert got["renamed"]["metadata"] == {"topic": "written before the upgrade"}
    assert got["user"] is not None and got["user"].id == ids["user"]
