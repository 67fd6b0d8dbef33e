"""The browser's side of a Chainlit server, standard library only: HTTP with
cookies (never through a proxy) and socket.io over Engine.IO 4 long-polling.
Used by the probe module on the app host."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

USER_AGENT = "chainlit-probe/1 (ansible verify)"


class ProbeError(Exception):
    """A check failed; the message says how."""


class Http:
    """Cookie-keeping HTTP client that never goes through a proxy."""

    def __init__(self, base: str, timeout: float, context: ssl.SSLContext | None = None) -> None:
        self.base = base.rstrip("/")
        self.timeout = timeout
        self.cookies: dict[str, str] = {}
        # context: how an https base is verified (e.g. against a load
        # balancer's own certificate); the system's CAs when None.
        self.opener = urllib.request.build_opener(
            urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
        )

    def request(
        self,
        method: str,
        path: str,
        body: bytes | None = None,
        content_type: str = "",
        timeout: float | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, str]:
        headers = {"User-Agent": USER_AGENT, **(headers or {})}
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


def mint_token(identifier: str, secret: str, lifetime: int = 600) -> str:
    """An access token as Chainlit signs it (HS256 with CHAINLIT_AUTH_SECRET,
    its user's dict, exp and iat): the server accepts it like one from a login,
    and creates the user when it is not stored yet."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    now = int(time.time())
    header = {"alg": "HS256", "typ": "JWT"}
    claims = {
        "identifier": identifier,
        "display_name": None,
        "metadata": {"provider": "chainlit-deploy-probe"},
        "exp": now + lifetime,
        "iat": now - 5,
    }
    signing_input = (
        b64(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64(json.dumps(claims, separators=(",", ":")).encode())
    )
    signature = hmac.new(secret.encode(), signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"
