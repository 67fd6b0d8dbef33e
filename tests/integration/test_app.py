"""The reference app: its reply shows the conversation, and resuming keeps it.

The end-to-end test runs the app with `chainlit run` against a migrated
database, logs in over HTTP and chats over socket.io as the browser does.
"""

from __future__ import annotations

import os
import queue
import shutil
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import requests
import socketio
from chainlit_users import hash_password
from conftest import APP_DIR, Database, apply_schema

REPLY_TIMEOUT = 20.0


def test_reply_lists_every_message_so_far() -> None:
    from app import describe_history

    assert describe_history(["hi"]) == "You said 1 thing so far: hi"
    assert (
        describe_history(["first", "second", "third"])
        == "You said 3 things so far: first, second, third"
    )


def test_resume_rebuilds_history_from_user_messages_in_order() -> None:
    from app import user_messages

    def step(kind: str, output: str, second: int) -> dict[str, str]:
        return {"type": kind, "output": output, "start": f"2025-01-01T00:00:0{second}"}

    thread: Any = {
        "steps": [
            step("assistant_message", "You said 1 thing", 2),
            step("user_message", "second", 3),
            step("user_message", "first", 1),
            step("run", "on_message", 1),
            step("user_message", "", 4),
        ]
    }
    assert user_messages(thread) == ["first", "second"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def running_app(tmp_path: Path, database: Database) -> Iterator[str]:
    """`chainlit run app.py` on a free local port, persisting to ``database``."""
    apply_schema(database)
    workdir = tmp_path / "app"
    shutil.copytree(APP_DIR, workdir, ignore=shutil.ignore_patterns("__pycache__", ".files"))
    port = _free_port()
    # Never CI (chainlit's --ci flag) nor the tests' own chainlit app root.
    env = {k: v for k, v in os.environ.items() if k not in {"CI", "CHAINLIT_APP_ROOT"}}
    env.update(
        DATABASE_URL=database.dsn,
        CHAINLIT_AUTH_SECRET=uuid.uuid4().hex * 2,
        CHAINLIT_USERS=f"alice:{hash_password('alice-pw', n=2**10)}",
    )
    log = (tmp_path / "chainlit.log").open("w", encoding="utf-8")
    chainlit = Path(sys.executable).with_name("chainlit")
    command = [str(chainlit), "run", "app.py", "--headless", "--host", "127.0.0.1"]
    proc = subprocess.Popen(
        [*command, "--port", str(port)], cwd=workdir, env=env, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                if _http().get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"chainlit did not start:\n{(tmp_path / 'chainlit.log').read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def _http() -> requests.Session:
    session = requests.Session()
    session.trust_env = False  # never send loopback traffic to a proxy
    return session


class ChatClient:
    """A browser's side of Chainlit's socket.io protocol, reduced to chatting."""

    def __init__(self, url: str, http: requests.Session, user: str) -> None:
        self.url, self.http, self.user = url, http, user
        self.events: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.sio = socketio.Client(http_session=http, reconnection=False)
        for name in ("new_message", "first_interaction", "resume_thread"):
            self.sio.on(name, self._recorder(name))
        self.backlog: list[tuple[str, dict[str, Any]]] = []
        self.thread_id = ""

    def _recorder(self, name: str):
        def record(data: dict[str, Any]) -> None:
            self.events.put((name, data))

        return record

    def connect(self, thread_id: str = "") -> None:
        cookie = "; ".join(f"{c.name}={c.value}" for c in self.http.cookies)
        self.sio.connect(
            self.url,
            headers={"Cookie": cookie},
            auth={
                "sessionId": str(uuid.uuid4()),
                "clientType": "webapp",
                "threadId": thread_id,
                "userEnv": "{}",
                "chatProfile": "",
            },
            transports=["polling"],
            socketio_path="/ws/socket.io",
            wait_timeout=10,
        )
        self.sio.emit("connection_successful")
        if thread_id:
            # Sent once on_chat_resume has run; the browser shows the thread then.
            self.wait_for("resume_thread")
            self.thread_id = thread_id

    def wait_for(self, event: str, **match: Any) -> dict[str, Any]:
        """The first event of that name and content; others stay for later waits."""

        def matches(name: str, data: dict[str, Any]) -> bool:
            return name == event and all(data.get(k) == v for k, v in match.items())

        for index, (name, data) in enumerate(self.backlog):
            if matches(name, data):
                del self.backlog[index]
                return data
        deadline = time.monotonic() + REPLY_TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                name, data = self.events.get(timeout=left)
            except queue.Empty:
                break
            if matches(name, data):
                return data
            self.backlog.append((name, data))
        pytest.fail(f"no {event} {match} within {REPLY_TIMEOUT}s; got {self.backlog}")

    def say(self, text: str) -> str:
        """Send a message; return the assistant's reply."""
        message = {
            "id": str(uuid.uuid4()),
            "threadId": self.thread_id,
            "type": "user_message",
            "name": self.user,
            "output": text,
            "createdAt": datetime.now(UTC).isoformat(),
        }
        self.sio.emit("client_message", {"message": message, "fileReferences": []})
        if not self.thread_id:
            self.thread_id = self.wait_for("first_interaction")["thread_id"]
        return str(self.wait_for("new_message", type="assistant_message")["output"])

    def close(self) -> None:
        self.sio.disconnect()


def wait_for_rows(database: Database, sql: str, params: tuple[Any, ...], count: int) -> None:
    """Chainlit persists in background tasks: poll, within a bound."""
    deadline = time.monotonic() + REPLY_TIMEOUT
    while database.query(sql, params)[0][0] < count:
        if time.monotonic() > deadline:
            pytest.fail(f"expected {count} rows from {sql} {params}")
        time.sleep(0.2)


def test_chat_survives_a_resume(running_app: str, database: Database) -> None:
    http = _http()
    refused = http.post(f"{running_app}/login", data={"username": "alice", "password": "nope"})
    assert refused.status_code == 401
    login = http.post(f"{running_app}/login", data={"username": "alice", "password": "alice-pw"})
    assert login.status_code == 200, login.text
    # Login upserts the user: a failure there is only logged, so look for the row.
    assert database.query('SELECT identifier FROM "User"') == [("alice",)]

    chat = ChatClient(running_app, http, "alice")
    chat.connect()
    assert chat.say("one") == "You said 1 thing so far: one"
    assert chat.say("two") == "You said 2 things so far: one, two"
    assert chat.say("three") == "You said 3 things so far: one, two, three"
    thread_id = chat.thread_id
    chat.close()

    wait_for_rows(
        database,
        'SELECT count(*) FROM "Step" WHERE "threadId" = %s AND type = \'user_message\'',
        (thread_id,),
        3,
    )
    listed = http.post(
        f"{running_app}/project/threads",
        json={"pagination": {"first": 20, "cursor": None}, "filter": {}},
    )
    assert [t["id"] for t in listed.json()["data"]] == [thread_id]

    resumed = ChatClient(running_app, http, "alice")
    resumed.connect(thread_id=thread_id)
    assert resumed.say("four") == "You said 4 things so far: one, two, three, four"
    resumed.close()
