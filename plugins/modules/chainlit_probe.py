#!/usr/bin/python
"""Ansible module: chat with a running Chainlit app as a browser does and prove it persists."""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.chainlit_deploy.stack.plugins.module_utils import postgres_login
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.chainlit_client import (
    Http,
    ProbeError,
    SocketIO,
    mint_token,
)

DOCUMENTATION = r"""
---
module: chainlit_probe
short_description: Prove from outside that a Chainlit app's chats persist, then remove the proof
description:
  - With O(state=present), logs in as the app lets users in, chats over socket.io
    (Engine.IO 4 long-polling, standard library only), and checks with what
    Chainlit itself stores and returns that the probe's message is saved as a step
    of a thread of its user, that the thread is listed for the History sidebar, that
    resuming returns its stored messages, and that a message after resuming lands in
    the same thread. Nothing about the app's replies is required; an app without
    C(@cl.on_chat_resume) gets the resume checks skipped.
  - With O(state=absent), deletes the probe's threads through the app
    (C(DELETE /project/thread)), that is O(thread_id) and every thread of O(username)
    whose name contains O(marker), then checks they are gone.
  - Never fails on a failed check; it returns one entry per check in RV(checks).
  - The probe's messages start with O(marker), so its threads are told apart
    from real ones; only threads of O(username) are ever deleted.
version_added: "0.1.0"
author: chainlit-deploy
extends_documentation_fragment:
  - chainlit_deploy.stack.postgres_login
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
    description: The identifier of the user the probe chats as.
    type: str
    required: true
  login:
    description:
      - How the probe logs in. C(password) posts O(username) and O(password) to C(/login)
        (the app's password_auth_callback); C(header) posts O(headers) to C(/auth/header)
        (its header_auth_callback); C(token) signs its own access token for O(username)
        with O(auth_secret), the app's C(CHAINLIT_AUTH_SECRET), which works whatever the
        app's login (OAuth included) and creates the user on first use.
    type: str
    choices: [password, header, token]
    default: password
  password:
    description: Password of O(username), for O(login=password).
    type: str
    default: ""
  headers:
    description: Headers that log in, for O(login=header).
    type: dict
    default: {}
  auth_secret:
    description: The app's CHAINLIT_AUTH_SECRET, for O(login=token).
    type: str
    default: ""
  cookie_name:
    description: Name of the app's auth cookie (CHAINLIT_AUTH_COOKIE_NAME).
    type: str
    default: access_token
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
      - Also check that the app's reply after resuming quotes the first message (the
        reference app's replies list every message so far). Nothing else about the
        app's replies is checked.
    type: bool
    default: false
  login_host:
    description: The app's database host as this host reaches it; empty skips the database checks.
    type: str
    default: ""
  login_db:
    description: The app's database.
    type: str
    default: ""
  login_user:
    description: The app's database role.
    type: str
    default: ""
  connect_timeout:
    description: Seconds to wait for each database connection.
    type: int
    default: 5
  timeout:
    description: Seconds to wait for each reply, event or background write.
    type: int
    default: 20
"""

EXAMPLES = r"""
- name: Chat with the app and check it persisted
  chainlit_deploy.stack.chainlit_probe:
    url: http://127.0.0.1:8502
    username: admin
    password: "{{ admin_password }}"
    login_host: 127.0.0.1
    login_db: chainlit
    login_user: chainlit
    login_password: "{{ db_password }}"
  register: probe
  no_log: true

- name: Delete the probe's thread
  chainlit_deploy.stack.chainlit_probe:
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


@dataclass
class Check:
    name: str
    ok: bool
    seconds: float
    detail: str
    skipped: bool = False


class Skipped(Exception):
    """The check does not apply to this app; the message says why."""


def tidy(detail: list[str]) -> str:
    """One line, whatever the errors it quotes."""
    return " ".join("; ".join(detail).split())


class Database:
    """Read-only queries on the app's database, polled because Chainlit writes in background."""

    def __init__(self, params: dict[str, Any], timeout: float) -> None:
        self.params = params
        self.timeout = timeout

    def query(self, sql: str, args: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        if not self.params["login_host"]:
            raise ProbeError("no database to check (the app's DATABASE_URL is unknown)")
        try:
            conn = postgres_login.connect(self.params, "ansible-chainlit_probe")
        except RuntimeError as err:
            raise ProbeError(str(err)) from err
        except postgres_login.DRIVER_ERRORS as err:
            raise ProbeError(f"cannot connect to the database: {str(err).strip()}") from err
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        except postgres_login.DRIVER_ERRORS as err:
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
        self.db = Database(params, float(params["timeout"]))
        self.checks: list[Check] = []
        self.logged_in = False
        self.last_body = ""
        self.thread_id = params["thread_id"]
        run = uuid.uuid4().hex[:8]
        self.first_text = f"{params['marker']} {run} one"
        self.second_text = f"{params['marker']} {run} two"

    @contextmanager
    def check(self, name: str) -> Iterator[list[str]]:
        """Record a check; ``detail`` collects what it proved. A check that
        raises Skipped passes as skipped, with the reason."""
        detail: list[str] = []
        start = time.monotonic()
        try:
            yield detail
        except Skipped as why:
            self.checks.append(Check(name, True, time.monotonic() - start, str(why), True))
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

    # --- Logging in, as the app lets users in ---------------------------------------------
    def login(self) -> str:
        """Log in with the configured method; return how."""
        method = self.params["login"]
        user = self.params["username"]
        if method == "token":
            secret = self.params["auth_secret"]
            if not secret:
                raise ProbeError(
                    "login 'token' needs the app's CHAINLIT_AUTH_SECRET (verify reads it from "
                    "the app's .env): set verify_login to password or header instead"
                )
            self.http.cookies[self.params["cookie_name"]] = mint_token(user, secret)
            status, text = self.http.request("GET", "/user")
            if status != 200:
                raise ProbeError(
                    f"the app refuses a token signed with its CHAINLIT_AUTH_SECRET (GET /user "
                    f"answered {status}: {text[:120]}): the secret in the .env is not the one the "
                    "app runs with; release it again"
                )
            self.logged_in = True
            return f"token for {user} signed with the app's CHAINLIT_AUTH_SECRET"
        if method == "header":
            status, text = self.http.request(
                "POST", "/auth/header", b"", headers=self.params["headers"]
            )
            hint = "verify_headers (the headers your header_auth_callback accepts)"
        else:
            status, text = self.http.request(
                "POST",
                "/login",
                urllib.parse.urlencode(
                    {"username": user, "password": self.params["password"]}
                ).encode(),
                "application/x-www-form-urlencoded",
            )
            hint = (
                "verify_user and verify_password (a user your app's password_auth_callback "
                "accepts), or verify_login: token"
            )
        if status != 200:
            raise ProbeError(
                f"POST /{'auth/header' if method == 'header' else 'login'} answered {status}: "
                f"the app refused the probe's login as {user}; set {hint} ({text[:120]})"
            )
        if not any(name.startswith(self.params["cookie_name"]) for name in self.http.cookies):
            raise ProbeError(f"the login set no {self.params['cookie_name']} cookie")
        self.logged_in = True
        return f"{method} login of {user}"

    # --- socket.io, as the browser chats ---------------------------------------------------
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

    def say(self, sio: SocketIO, text: str) -> None:
        """Send a message as the browser does. Chainlit saves it as a step of
        the session's thread whatever the app replies, or whether it replies."""
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

    def reply(self, sio: SocketIO) -> str:
        data = sio.wait_for(
            "new_message",
            lambda d: isinstance(d, dict) and d.get("type") == "assistant_message",
        )
        return str(data.get("output", ""))

    # --- The checks --------------------------------------------------------------------------
    def run(self) -> None:
        user = self.params["username"]
        with self.check("login works and the User row exists") as detail:
            detail.append(self.login())
            self.db.wait_for(
                f'"User" row {user}', 'SELECT 1 FROM "User" WHERE identifier = %s', (user,), bool
            )
            detail.append(f'"User" row {user} exists')

        name = "the probe's message is saved in a thread of its user"
        if not self.logged_in:
            self.not_run(name, "login failed")
        else:
            with self.check(name) as detail:
                self.saved_message(detail)

        for name, check in (
            ("the thread is listed in History (POST /project/threads)", self.listed),
            ("resuming returns the thread's stored messages", self.resumed),
            ("a message after resuming lands in the same thread", self.continued),
        ):
            if not self.thread_id:
                self.not_run(name, "no probe thread")
                continue
            with self.check(name) as detail:
                check(detail)
        if self.params["expect_context"] and self.thread_id:
            with self.check("the reply after resuming quotes the first message") as detail:
                if getattr(self, "resume_sio", None) is None:
                    raise Skipped("skipped: the thread was not resumed")
                if not self.context_reply:
                    raise ProbeError("no reply after resuming")
                if self.first_text not in self.context_reply:
                    raise ProbeError(f"the reply lacks it: {self.context_reply[:120]!r}")
                detail.append(f"reply {self.context_reply[:120]!r}")

    def saved_message(self, detail: list[str]) -> None:
        sio = self.chat()
        try:
            self.say(sio, self.first_text)
        finally:
            sio.close()
        detail.append(f"thread {self.thread_id}")
        self.db.wait_for(
            f'the message as a user_message step of "Thread" {self.thread_id} of '
            f"{self.params['username']}",
            """SELECT 1 FROM "Step" s JOIN "Thread" t ON t.id = s."threadId"
               JOIN "User" u ON u.id = t."userId"
               WHERE t.id = %s AND u.identifier = %s AND s.type = 'user_message'
               AND s.output = %s""",
            (self.thread_id, self.params["username"], self.first_text),
            bool,
        )
        detail.append('a user_message step of the user\'s "Thread" in PostgreSQL')
        status, thread = self.http.json("GET", f"/project/thread/{self.thread_id}", None)
        if status != 200 or not isinstance(thread, dict):
            raise ProbeError(f"GET /project/thread/{self.thread_id} answered {status}")
        outputs = [str(s.get("output")) for s in thread.get("steps") or []]
        if self.first_text not in outputs:
            raise ProbeError("GET /project/thread does not return the message")
        detail.append("GET /project/thread returns it")

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

    def resumable(self) -> bool:
        status, settings = self.http.json("GET", "/project/settings?language=en-US", None)
        return not (status == 200 and isinstance(settings, dict)) or bool(
            settings.get("threadResumable", True)
        )

    def resumed(self, detail: list[str]) -> None:
        self.context_reply = ""
        if not self.resumable():
            raise Skipped(
                "skipped: the app offers no resume (no @cl.on_chat_resume); its History "
                "shows the stored thread read-only"
            )
        self.resume_sio = self.chat(self.thread_id)
        thread = self.resume_sio.wait_for("resume_thread", error="resume_thread_error")
        outputs = [str(s.get("output")) for s in (thread or {}).get("steps") or []]
        if self.first_text not in outputs:
            raise ProbeError("resume_thread arrived without the stored message")
        detail.append(f"resume_thread returned {len(outputs)} stored steps, the message among them")

    def continued(self, detail: list[str]) -> None:
        sio = getattr(self, "resume_sio", None)
        if sio is None:
            raise Skipped("skipped: the thread was not resumed")
        try:
            self.say(sio, self.second_text)
            if self.params["expect_context"]:
                self.context_reply = self.reply(sio)
        finally:
            sio.close()
        self.db.wait_for(
            "the message after resuming in the same thread",
            """SELECT 1 FROM "Step" WHERE "threadId" = %s AND type = 'user_message'
               AND output = %s""",
            (self.thread_id, self.second_text),
            bool,
        )
        others = self.db.query(
            """SELECT count(DISTINCT "threadId") FROM "Step" WHERE output = %s""",
            (self.second_text,),
        )
        if others[0][0] != 1:
            raise ProbeError("the message after resuming was saved in another thread too")
        detail.append(f"saved in thread {self.thread_id}, no other")

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
            "login": {
                "type": "str",
                "choices": ["password", "header", "token"],
                "default": "password",
            },
            "password": {"type": "str", "default": "", "no_log": True},
            "headers": {"type": "dict", "default": {}, "no_log": True},
            "auth_secret": {"type": "str", "default": "", "no_log": True},
            "cookie_name": {"type": "str", "default": "access_token"},
            "marker": {"type": "str", "default": "ansible-verify-probe"},
            "thread_id": {"type": "str", "default": ""},
            "expect_context": {"type": "bool", "default": False},
            **postgres_login.argument_spec(
                login_host={"default": ""},
                login_db={"default": ""},
                login_user={"default": ""},
                connect_timeout={"default": 5},
            ),
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
