"""The verify role's probe: its socket.io client, its cleanup scope and its report.

Runs against a real python-socketio server (the library Chainlit serves with),
so the hand-written Engine.IO 4 long-polling client is held to the protocol.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import pytest
import socketio
from ansible_collections.chainlit_deploy.stack.plugins.filter import verify as filters
from ansible_collections.chainlit_deploy.stack.plugins.module_utils.chainlit_client import (
    mint_token,
)
from ansible_collections.chainlit_deploy.stack.plugins.modules import chainlit_probe as probe


class _Quiet(WSGIRequestHandler):
    def log_message(self, *args: Any) -> None:
        pass


class _ThreadingServer(WSGIServer):
    # A long poll must not block the POSTs that answer it.
    def process_request(self, request: Any, client_address: Any) -> None:
        threading.Thread(
            target=super().process_request, args=(request, client_address), daemon=True
        ).start()


@pytest.fixture
def chat_server() -> Iterator[tuple[str, dict[str, Any]]]:
    """A socket.io server replying like the reference app, at Chainlit's path."""
    seen: dict[str, Any] = {}
    sio = socketio.Server(async_mode="threading", ping_interval=1)

    @sio.event
    def connect(sid: str, environ: dict[str, Any], auth: dict[str, Any]) -> None:
        if "access_token=t0k" not in environ.get("HTTP_COOKIE", ""):
            raise socketio.exceptions.ConnectionRefusedError("authentication failed")
        seen["auth"] = auth

    @sio.on("client_message")
    def client_message(sid: str, data: dict[str, Any]) -> None:
        text = data["message"]["output"]
        sio.emit("first_interaction", {"interaction": text, "thread_id": "t-1"}, to=sid)
        sio.emit("new_message", {"type": "user_message", "output": text}, to=sid)
        sio.emit("new_message", {"type": "assistant_message", "output": f"echo {text}"}, to=sid)

    app = socketio.WSGIApp(sio, socketio_path="ws/socket.io")
    server = make_server("127.0.0.1", 0, app, server_class=_ThreadingServer, handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_port}", seen
    finally:
        server.shutdown()


def _params(url: str, **extra: Any) -> dict[str, Any]:
    params = {
        "url": url,
        "username": "admin",
        "login": "password",
        "password": "pw",
        "headers": {},
        "auth_secret": "",
        "cookie_name": "access_token",
        "marker": "ansible-verify-probe lab",
        "thread_id": "",
        "expect_context": True,
        "login_host": "",
        "login_port": 5432,
        "login_db": "",
        "login_user": "",
        "login_password": "",
        "ssl_mode": "prefer",
        "connect_timeout": 5,
        "timeout": 5,
    }
    return params | extra


def test_the_client_chats_over_long_polling_with_the_cookie(chat_server: Any) -> None:
    url, seen = chat_server
    chat = probe.Probe(_params(url))
    chat.http.cookies["access_token"] = "t0k"
    sio = chat.chat()
    try:
        chat.say(sio, "hello")
        assert chat.reply(sio) == "echo hello"
    finally:
        sio.close()
    assert chat.thread_id == "t-1"
    assert seen["auth"]["clientType"] == "webapp"
    assert seen["auth"]["threadId"] == ""


def test_a_refused_connection_is_a_failed_check_not_a_crash(chat_server: Any) -> None:
    url, _ = chat_server
    chat = probe.Probe(_params(url))
    with pytest.raises(probe.ProbeError, match="connection refused"):
        chat.chat()


class _FakeHttp:
    """The app's HTTP API with two probe threads and one real thread of the user."""

    def __init__(self) -> None:
        self.threads = {
            "p-old": "ansible-verify-probe lab 1111 one",
            "p-other-host": "ansible-verify-probe web2 2222 one",
            "real": "my real chat",
        }
        self.cookies: dict[str, str] = {}

    def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> tuple[int, str]:
        assert (method, path) == ("POST", "/login")
        self.cookies["access_token"] = "t0k"
        return 200, "{}"

    def json(self, method: str, path: str, data: Any) -> tuple[int, Any]:
        if path == "/project/threads":
            search = data["filter"]["search"].lower()
            found = [{"id": i, "name": n} for i, n in self.threads.items() if search in n.lower()]
            return 200, {"data": found}
        if method == "DELETE":
            self.threads.pop(data["threadId"])
            return 200, {"success": True}
        thread_id = path.rsplit("/", 1)[-1]
        return (200, {"id": thread_id}) if thread_id in self.threads else (500, "error")


def test_cleanup_deletes_only_this_hosts_probe_threads() -> None:
    chat = probe.Probe(_params("http://unused", thread_id=""))
    chat.http = _FakeHttp()
    assert chat.delete() is True
    assert sorted(chat.http.threads) == ["p-other-host", "real"]
    assert chat.checks[0].ok, chat.checks[0].detail


def test_the_report_has_one_line_per_check() -> None:
    rows = [
        {"name": "login", "ok": True, "seconds": 0.5, "detail": "200"},
        {"name": "schema matches", "ok": False, "seconds": 1, "detail": "cannot:\n\tdown"},
    ]
    assert filters.verify_table(rows) == [
        "PASS   0.50s  login           200",
        "FAIL   1.00s  schema matches  cannot: down",
    ]


def test_a_check_that_crashes_still_reports_and_keeps_the_thread_id() -> None:
    chat = probe.Probe(_params("http://unused"))
    chat.thread_id = "t-9"
    with chat.check("boom"):
        json.loads("not json")
    assert not chat.checks[0].ok
    assert "probe error JSONDecodeError" in chat.checks[0].detail
    assert chat.thread_id == "t-9"


def test_a_token_the_probe_signs_is_one_chainlit_accepts(monkeypatch) -> None:
    """The probe's own token, decoded by the installed Chainlit's own code."""
    from chainlit.auth.jwt import decode_jwt

    monkeypatch.setenv("CHAINLIT_AUTH_SECRET", "s" * 64)
    user = decode_jwt(mint_token("probe-user", "s" * 64))
    assert user.identifier == "probe-user"
    monkeypatch.setenv("CHAINLIT_AUTH_SECRET", "another secret")
    with pytest.raises(Exception, match="Signature verification failed"):
        decode_jwt(mint_token("probe-user", "s" * 64))


def test_a_refused_login_names_the_variables_to_set() -> None:
    class Refusing(_FakeHttp):
        def request(self, method: str, path: str, *args: Any, **kwargs: Any) -> tuple[int, str]:
            return 401, '{"detail": "credentialssignin"}'

    chat = probe.Probe(_params("http://unused"))
    chat.http = Refusing()
    chat.run()
    login = chat.checks[0]
    assert not login.ok
    assert "POST /login answered 401" in login.detail
    assert "verify_user and verify_password" in login.detail
    assert "verify_login: token" in login.detail
    assert [c.detail for c in chat.checks[1:]] == ["not run: login failed"] + [
        "not run: no probe thread"
    ] * 3
