#!/usr/bin/python
"""Ansible module: chat with a running Chainlit app as a browser does and prove it persists."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ansible.module_utils.basic import AnsibleModule

try:
    import psycopg2

    PSYCOPG2_IMPORT_ERROR: ImportError | None = None
except ImportError as exc:
    PSYCOPG2_IMPORT_ERROR = exc

DOCUMENTATION = r"""
---
module: chainlit_probe
short_description: Prove from outside that a Chainlit app's chats persist, then remove the proof
description:
  - With O(state=present), logs in over HTTP, chats over socket.io (Engine.IO 4
    long-polling, standard library only), and checks that the user, the thread
    and its steps reach PostgreSQL, that the thread is listed for the History
    sidebar, and that resuming it keeps the conversation.
  - With O(state=absent), deletes the probe's threads through the app
    (C(DELETE /project/thread)): O(thread_id) and every thread of O(username)
    whose name contains O(marker), then checks they are gone.
  - Never fails on a failed check; it returns one entry per check in RV(checks).
  - The probe's messages start with O(marker), so its threads are told apart
    from real ones; only threads of O(username) are ever deleted.
version_added: "0.1.0"
author: chainlit-deploy
requirements:
  - psycopg2 on the host for the database checks (Debian/Ubuntu C(python3-psycopg2))
attributes:
  check_mode:
    support: none
    description: The probe writes a thread and deletes it; it does not run in check mode.
options:
  state:
    description: C(present) runs the probe; C(absent) deletes its threads.
    type: str
    choices: [present, absent]
    default: present
  url:
    description: Base URL of the app as seen from the host, with its root path.
    type: str
    required: true
  username:
    description: A user of the app with password login.
    type: str
    required: true
  password:
    description: Password of O(username).
    type: str
    required: true
  marker:
    description: Text that starts every probe message and so the name of the probe's threads.
    type: str
    default: ansible-verify-probe
  thread_id:
    description: With O(state=absent), a probe thread to delete.
    type: str
    default: ""
  expect_context:
    description:
      - Whether the reply after resuming must quote the first message (the
        reference app lists every message so far). When false, resuming must
        only succeed and the app must reply.
    type: bool
    default: true
  db_host:
    description: Database host as seen from this host; empty skips the database checks (they fail).
    type: str
    default: ""
  db_port:
    description: Database port.
    type: int
    default: 5432
  db_name:
    description: Database name.
    type: str
    default: ""
  db_user:
    description: Database role.
    type: str
    default: ""
  db_password:
    description: Password of O(db_user).
    type: str
    default: ""
  db_sslmode:
    description: libpq sslmode.
    type: str
    default: prefer
  timeout:
    description: Seconds to wait for each reply, event or background write.
    type: int
    default: 20
"""

EXAMPLES = r"""
- name: Chat with the app and check it persisted
  chainlit_probe:
    url: http://127.0.0.1:8502
    username: admin
    password: "{{ admin_password }}"
    db_host: 127.0.0.1
    db_name: chainlit
    db_user: chainlit
    db_password: "{{ db_password }}"
  register: probe
  no_log: true

- name: Delete the probe's thread
  chainlit_probe:
    state: absent
    url: http://127.0.0.1:8502
    username: admin
    password: "{{ admin_password }}"
    thread_id: "{{ probe.thread_id }}"
  no_log: true
"""

RETURN = r"""
checks:
  description: One entry per check, in order.
  returned: always
  type: list
  elements: dict
  sample: [{name: login, ok: true, seconds: 0.41, detail: "200, User row admin"}]
thread_id:
  description: The probe's thread (empty when none was created).
  returned: always
  type: str
"""

USER_AGENT = "chainlit-probe/1 (ansible verify)"


class ProbeError(Exception):
    """A check failed; the message says how."""


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str


def tidy(detail: list[str]) -> str:
    """One line, whatever the errors it quotes."""
    return " ".join("; ".join(detail).split())


class Http:
    """Cookie-keeping HTTP client that never goes through a proxy."""

    def __init__(self, base: str, timeout: float) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        self.opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "",
        timeout: float | None = None,
    ) -> tuple[int, str]:
        headers = {"User-Agent": USER_AGENT}
        if content_type:
            headers["Content-Type"] = content_type
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        req = urllib.request.Request(self.base + path, body, headers, method=method)
        try:
            with self.opener.open(req, timeout=timeout or self.timeout) as resp:
                self._keep_cookies(resp.headers.get_all("Set-Cookie") or [])
                return resp.status, resp.read().decode("utf-8", "replace")
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode("utf-8", "replace")
        except (OSError, urllib.error.URLError) as err:
            raise ProbeError(f"{method} {path}: {err}") from err

    def _keep_cookies(self, headers: list[str]) -> None:
        for header in headers:
            name, _, value = header.split(";", 1)[0].partition("=")
            if name.strip():
                self.cookies[name.strip()] = value.strip()

    def json(self, method: str, path: str, data: Any) -> tuple[int, Any]:
        status, text = self.request(method, path, json.dumps(data).encode(), "application/json")
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text


class SocketIO:
    """The browser's side of Chainlit's socket.io, over Engine.IO 4 long-polling."""

    def __init__(self, http: Http, deadline_seconds: float) -> None:
        self.http = http
        self.wait_seconds = deadline_seconds
        self.path = "/ws/socket.io/?EIO=4&transport=polling"
        self.backlog: list[tuple[str, Any]] = []

    def _poll(self, timeout: float) -> list[str]:
        status, text = self.http.request(
            "GET", f"{self.path}&t={uuid.uuid4().hex[:8]}", timeout=timeout
        )
        if status != 200:
            raise ProbeError(f"socket.io poll answered {status}: {text[:200]}")
        return [packet for packet in text.split("\x1e") if packet]

    def _send(self, packet: str) -> None:
        status, text = self.http.request(
            "POST", self.path, packet.encode(), "text/plain;charset=UTF-8"
        )
        if status != 200:
            raise ProbeError(f"socket.io send answered {status}: {text[:200]}")

    def connect(self, auth: dict[str, str]) -> None:
        opening = self._poll(self.wait_seconds)
        if not opening or not opening[0].startswith("0"):
            raise ProbeError(f"no Engine.IO handshake: {opening[:1]}")
        self.path += "&sid=" + urllib.parse.quote(json.loads(opening[0][1:])["sid"])
        self._send("40" + json.dumps(auth))
        deadline = time.monotonic() + self.wait_seconds
        while time.monotonic() < deadline:
            for packet in self._poll(deadline - time.monotonic()):
                if packet.startswith("40"):
                    return
                if packet.startswith("44"):
                    raise ProbeError(f"socket.io connection refused: {packet[2:200]}")
                self._handle(packet)
        raise ProbeError("socket.io connection not acknowledged")

    def emit(self, event: str, data: Any = None) -> None:
        self._send("42" + json.dumps([event] if data is None else [event, data]))

    def _handle(self, packet: str) -> None:
        if packet == "2":
            self._send("3")
        elif packet.startswith("42"):
            payload = json.loads(re.sub(r"^\d*", "", packet[2:]))
            self.backlog.append((payload[0], payload[1] if len(payload) > 1 else None))
        elif packet.startswith(("1", "41")):
            raise ProbeError("the server closed the socket.io connection")

    def wait_for(
        self, event: str, accept: Callable[[Any], bool] = lambda _: True, error: str = ""
    ) -> Any:
        """The first ``event`` that ``accept`` takes; an ``error`` event fails at once."""
        deadline = time.monotonic() + self.wait_seconds
        while True:
            for name, data in self.backlog:
                if error and name == error:
                    raise ProbeError(f"{error}: {str(data)[:200]}")
            for index, (name, data) in enumerate(self.backlog):
                if name == event and accept(data):
                    del self.backlog[index]
                    return data
            left = deadline - time.monotonic()
            if left <= 0:
                seen = sorted({name for name, _ in self.backlog})
                raise ProbeError(f"no {event} event within {self.wait_seconds:.0f}s (got {seen})")
            try:
                packets = self._poll(left)
            except ProbeError:
                # A long poll cut by the deadline is the wait running out.
                if time.monotonic() < deadline:
                    raise
                packets = []
            for packet in packets:
                self._handle(packet)

    def close(self) -> None:
        try:
            self._send("41")
            self._send("1")
        except ProbeError:
            pass


class Database:
    """Read-only queries on the app's database, polled because Chainlit writes in background."""

    def __init__(self, params: dict[str, Any], timeout: float) -> None:
        self.params = params
        self.timeout = timeout

    def query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if PSYCOPG2_IMPORT_ERROR is not None:
            raise ProbeError("psycopg2 is missing on the host (install python3-psycopg2)")
        if not self.params["host"]:
            raise ProbeError("no database to check (the app's DATABASE_URL is unknown)")
        try:
            conn = psycopg2.connect(
                host=self.params["host"],
                port=self.params["port"],
                dbname=self.params["name"],
                user=self.params["user"],
                password=self.params["password"],
                sslmode=self.params["sslmode"],
                connect_timeout=5,
            )
        except psycopg2.Error as err:
            raise ProbeError(f"cannot connect to the database: {str(err).strip()}") from err
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        except psycopg2.Error as err:
            raise ProbeError(f"database query failed: {str(err).strip()}") from err
        finally:
            conn.close()

    def wait_for(
        self, what: str, sql: str, args: tuple[Any, ...], ok: Callable[[Any], bool]
    ) -> Any:
        deadline = time.monotonic() + self.timeout
        while True:
            rows = self.query(sql, args)
            if ok(rows):
                return rows
            if time.monotonic() > deadline:
                raise ProbeError(f"{what} not in the database within {self.timeout:.0f}s")
            time.sleep(0.5)


class Probe:
    def __init__(self, params: dict[str, Any]) -> None:
        self.params = params
        self.http = Http(params["url"], float(params["timeout"]))
        self.db = Database(
            {
                "host": params["db_host"],
                "port": params["db_port"],
                "name": params["db_name"],
                "user": params["db_user"],
                "password": params["db_password"],
                "sslmode": params["db_sslmode"],
            },
            float(params["timeout"]),
        )
        self.checks: list[Check] = []
        self.logged_in = False
        self.last_body = ""
        self.thread_id = params["thread_id"]
        run = uuid.uuid4().hex[:8]
        self.first_text = f"{params['marker']} {run} one"
        self.second_text = f"{params['marker']} {run} two"

    @contextmanager
    def check(self, name: str) -> Iterator[list[str]]:
        """Record a check; ``detail`` collects what it proved."""
        detail: list[str] = []
        start = time.monotonic()
        try:
            yield detail
        except ProbeError as err:
            detail.append(str(err))
            self.checks.append(Check(name, False, time.monotonic() - start, tidy(detail)))
        except Exception as err:  # a probe bug must not skip the cleanup
            detail.append(f"probe error {type(err).__name__}: {err}")
            self.checks.append(Check(name, False, time.monotonic() - start, tidy(detail)))
        else:
            self.checks.append(Check(name, True, time.monotonic() - start, tidy(detail)))

    def not_run(self, name: str, reason: str) -> None:
        self.checks.append(Check(name, False, 0.0, f"not run: {reason}"))

    def login(self) -> None:
        status, text = self.http.request(
            "POST",
            "/login",
            urllib.parse.urlencode(
                {"username": self.params["username"], "password": self.params["password"]}
            ).encode(),
            "application/x-www-form-urlencoded",
        )
        if status != 200:
            raise ProbeError(f"POST /login answered {status}: {text[:200]}")
        if not any(name.startswith("access_token") for name in self.http.cookies):
            raise ProbeError("POST /login set no access_token cookie")
        self.logged_in = True

    def chat(self, thread_id: str = "") -> SocketIO:
        sio = SocketIO(self.http, float(self.params["timeout"]))
        sio.connect(
            {
                "sessionId": str(uuid.uuid4()),
                "clientType": "webapp",
                "threadId": thread_id,
                "userEnv": "{}",
                "chatProfile": "",
            }
        )
        sio.emit("connection_successful")
        return sio

    def say(self, sio: SocketIO, text: str) -> str:
        """Send a message as the browser does; return the assistant's reply."""
        message = {
            "id": str(uuid.uuid4()),
            "threadId": self.thread_id,
            "type": "user_message",
            "name": self.params["username"],
            "output": text,
            "createdAt": datetime.now(UTC).isoformat(),
        }
        sio.emit("client_message", {"message": message, "fileReferences": []})
        if not self.thread_id:
            self.thread_id = str(sio.wait_for("first_interaction")["thread_id"])
        reply = sio.wait_for(
            "new_message",
            lambda data: isinstance(data, dict) and data.get("type") == "assistant_message",
        )
        return str(reply.get("output", ""))

    def run(self) -> None:
        user = self.params["username"]
        with self.check("login works and the User row exists") as detail:
            self.login()
            detail.append("POST /login 200 with access_token cookie")
            self.db.wait_for(
                f'"User" row {user}', 'SELECT 1 FROM "User" WHERE identifier = %s', (user,), bool
            )
            detail.append(f'"User" row {user} exists')

        name = "probe chat is saved as a Thread with its steps"
        if not self.logged_in:
            self.not_run(name, "login failed")
        else:
            with self.check(name) as detail:
                self.saved_chat(detail)

        for name, check in (
            ("thread is listed in History (POST /project/threads)", self.listed),
            ("resuming the thread keeps the conversation", self.resumed),
        ):
            if not self.thread_id:
                self.not_run(name, "no probe thread")
                continue
            with self.check(name) as detail:
                check(detail)

    def saved_chat(self, detail: list[str]) -> None:
        user = self.params["username"]
        sio = self.chat()
        try:
            reply = self.say(sio, self.first_text)
        finally:
            sio.close()
        detail.append(f"thread {self.thread_id}, reply {reply[:80]!r}")
        rows = self.db.wait_for(
            f'"Thread" {self.thread_id} of {user} with a user and an assistant step',
            """SELECT count(*) FILTER (WHERE s.type = 'user_message'),
                      count(*) FILTER (WHERE s.type = 'assistant_message')
               FROM "Thread" t JOIN "User" u ON u.id = t."userId"
               LEFT JOIN "Step" s ON s."threadId" = t.id
               WHERE t.id = %s AND u.identifier = %s
               GROUP BY t.id""",
            (self.thread_id, user),
            lambda r: bool(r) and r[0][0] >= 1 and r[0][1] >= 1,
        )
        detail.append(f'"Thread" row with {rows[0][0]} user and {rows[0][1]} assistant step(s)')
        status, thread = self.http.json("GET", f"/project/thread/{self.thread_id}", None)
        if status != 200 or not isinstance(thread, dict):
            raise ProbeError(f"GET /project/thread/{self.thread_id} answered {status}")
        detail.append(f"GET /project/thread 200 with {len(thread.get('steps') or [])} steps")

    def listed(self, detail: list[str]) -> None:
        deadline = time.monotonic() + float(self.params["timeout"])
        while True:
            status, listed = self.list_threads(self.first_text)
            if self.thread_id in [t.get("id") for t in listed]:
                detail.append("listed for the History sidebar")
                return
            if status != 200:
                raise ProbeError(f"POST /project/threads answered {status}: {self.last_body[:200]}")
            if time.monotonic() > deadline:
                raise ProbeError(f"POST /project/threads answered {status} without the thread")
            time.sleep(0.5)

    def resumed(self, detail: list[str]) -> None:
        sio = self.chat(self.thread_id)
        try:
            sio.wait_for("resume_thread", error="resume_thread_error")
            detail.append("resume_thread received")
            reply = self.say(sio, self.second_text)
        finally:
            sio.close()
        if self.params["expect_context"] and self.first_text not in reply:
            raise ProbeError(f"the reply lacks the earlier message: {reply[:120]!r}")
        detail.append(f"reply {reply[:120]!r}")

    def list_threads(self, search: str) -> tuple[int, list[dict[str, Any]]]:
        status, body = self.http.json(
            "POST",
            "/project/threads",
            {
                "pagination": {"first": 100, "cursor": None},
                "filter": {"search": search, "feedback": None},
            },
        )
        self.last_body = json.dumps(body) if not isinstance(body, str) else body
        data = body.get("data") if isinstance(body, dict) else None
        return status, data if status == 200 and isinstance(data, list) else []

    def delete(self) -> bool:
        """Delete the probe's threads; True when something was deleted."""
        deleted: list[str] = []
        with self.check("probe thread deleted (DELETE /project/thread)") as detail:
            self.login()
            status, listed = self.list_threads(self.params["marker"])
            ids = [str(t["id"]) for t in listed if self.params["marker"] in str(t.get("name"))]
            if self.thread_id and self.thread_id not in ids:
                ids.insert(0, self.thread_id)
            for thread_id in ids:
                status, body = self.http.json("DELETE", "/project/thread", {"threadId": thread_id})
                if status == 200:
                    deleted.append(thread_id)
                elif not self.stored(thread_id):
                    continue
                else:
                    raise ProbeError(
                        f"DELETE /project/thread {thread_id} answered {status}: {body}"
                    )
            left = [t for t in ids if self.stored(t)]
            if left:
                raise ProbeError(f"still stored after DELETE: {', '.join(left)}")
            detail.append(
                f"deleted {len(deleted)} probe thread(s)" if deleted else "no probe thread stored"
            )
        return bool(deleted)

    def stored(self, thread_id: str) -> bool:
        """Whether the thread is still stored: asked of the database, else of the app."""
        try:
            return bool(self.db.query('SELECT 1 FROM "Thread" WHERE id = %s', (thread_id,)))
        except ProbeError as err:
            status, _ = self.http.json("GET", f"/project/thread/{thread_id}", None)
            # 400: the app has no data layer, so nothing of it can be stored.
            if status in (400, 404):
                return False
            if status == 200:
                return True
            # A deleted thread makes GET answer 500; the History list tells.
            listed_status, listed = self.list_threads(self.params["marker"])
            if listed_status == 200:
                return thread_id in [t.get("id") for t in listed]
            raise ProbeError(
                f"cannot confirm thread {thread_id} is gone: {err}; "
                f"GET /project/thread answered {status}"
            ) from err


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "url": {"type": "str", "required": True},
            "username": {"type": "str", "required": True},
            "password": {"type": "str", "required": True, "no_log": True},
            "marker": {"type": "str", "default": "ansible-verify-probe"},
            "thread_id": {"type": "str", "default": ""},
            "expect_context": {"type": "bool", "default": True},
            "db_host": {"type": "str", "default": ""},
            "db_port": {"type": "int", "default": 5432},
            "db_name": {"type": "str", "default": ""},
            "db_user": {"type": "str", "default": ""},
            "db_password": {"type": "str", "default": "", "no_log": True},
            "db_sslmode": {"type": "str", "default": "prefer"},
            "timeout": {"type": "int", "default": 20},
        },
        supports_check_mode=False,
    )
    if not module.params["marker"].strip():
        module.fail_json(msg="marker must not be empty: it keeps real threads out of the cleanup")
    probe = Probe(module.params)
    changed = False
    if module.params["state"] == "present":
        probe.run()
    else:
        changed = probe.delete()
    module.exit_json(
        changed=changed,
        thread_id=probe.thread_id,
        checks=[asdict(c) | {"seconds": round(c.seconds, 2)} for c in probe.checks],
    )


if __name__ == "__main__":
    main()
