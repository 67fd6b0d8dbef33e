#!/usr/bin/env python3
"""What users see while a release rolls: one thread asks GET /health every
--interval seconds, another holds complete chats back to back, each as a new
browser (log in with --user/--password, open socket.io, send a message, wait
for the assistant's reply). Until --stop-file exists (or --duration passes);
then prints JSON: requests and chats, how many failed and why (first few),
the longest gap between two good answers, and which app host (the load
balancer's sticky cookie) held each chat. Standard library plus the
collection's chainlit_client (the probe module's browser side).

  chat_prober.py --url https://lb --cafile lb.pem --user alice --password-file pw \\
      --stop-file /tmp/stop [--out result.json]
"""

from __future__ import annotations

import argparse
import json
import ssl
import sys
import threading
import time
import urllib.parse
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins" / "module_utils"))
from chainlit_client import Http, ProbeError, SocketIO


class Tally:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.total = self.failed = 0
        self.errors: list[str] = []
        self.last_ok = time.monotonic()
        self.longest_gap = 0.0
        self.servers: dict[str, int] = {}

    def add(self, ok: bool, detail: str = "", server: str = "") -> None:
        with self.lock:
            self.total += 1
            now = time.monotonic()
            if ok:
                self.longest_gap = max(self.longest_gap, now - self.last_ok)
                self.last_ok = now
                if server:
                    self.servers[server] = self.servers.get(server, 0) + 1
            else:
                self.failed += 1
                if len(self.errors) < 10:
                    self.errors.append(f"{datetime.now(UTC):%H:%M:%S} {detail}"[:300])

    def result(self) -> dict:
        return {
            "total": self.total,
            "failed": self.failed,
            "errors": self.errors,
            "longest_gap_s": round(self.longest_gap, 2),
            "by_app_host": self.servers,
        }


def health_loop(args, context, tally: Tally, done: threading.Event) -> None:
    http = Http(args.url, args.timeout, context)
    while not done.is_set():
        http.cookies.clear()
        try:
            status, _ = http.request("GET", "/health")
            tally.add(status == 200, f"/health answered {status}")
        except ProbeError as error:
            tally.add(False, str(error))
        done.wait(args.interval)


def one_chat(args, context, password: str, n: int) -> str:
    """A new browser's chat; returns the app host that held it."""
    http = Http(args.url, args.timeout, context)
    form = urllib.parse.urlencode({"username": args.user, "password": password}).encode()
    status, text = http.request("POST", "/login", form, "application/x-www-form-urlencoded")
    if status != 200:
        raise ProbeError(f"POST /login answered {status}: {text[:120]}")
    sio = SocketIO(http, args.timeout)
    sio.connect(
        {
            "sessionId": str(uuid.uuid4()),
            "clientType": "webapp",
            "threadId": "",
            "userEnv": "{}",
            "chatProfile": "",
        }
    )
    sio.emit("connection_successful")
    text = f"roll probe {n} {uuid.uuid4().hex[:8]}"
    message = {
        "id": str(uuid.uuid4()),
        "threadId": "",
        "type": "user_message",
        "name": args.user,
        "output": text,
        "createdAt": datetime.now(UTC).isoformat(),
    }
    sio.emit("client_message", {"message": message, "fileReferences": []})
    sio.wait_for(
        "new_message", lambda d: isinstance(d, dict) and d.get("type") == "assistant_message"
    )
    sio.close()
    return http.cookies.get(args.sticky_cookie, "")


def chat_loop(args, context, password: str, tally: Tally, done: threading.Event) -> None:
    n = 0
    while not done.is_set():
        n += 1
        try:
            tally.add(True, server=one_chat(args, context, password, n))
        except (ProbeError, OSError, ValueError, KeyError) as error:
            tally.add(False, f"chat {n}: {error}")
        done.wait(args.chat_interval)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True, help="the public URL (the load balancer)")
    parser.add_argument("--cafile", default="", help="verify https against this certificate")
    parser.add_argument("--user", required=True)
    parser.add_argument("--password-file", required=True)
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between /health")
    parser.add_argument("--chat-interval", type=float, default=0.0, help="seconds between chats")
    parser.add_argument("--timeout", type=float, default=20.0)
    parser.add_argument("--sticky-cookie", default="CHAINLIT_LB")
    parser.add_argument("--stop-file", default="")
    parser.add_argument("--duration", type=float, default=0.0, help="seconds; 0: until --stop-file")
    parser.add_argument("--out", default="", help="write the JSON here too")
    args = parser.parse_args()
    context = ssl.create_default_context(cafile=args.cafile or None)
    password = Path(args.password_file).read_text().strip()

    done = threading.Event()
    health, chats = Tally(), Tally()
    threads = [
        threading.Thread(target=health_loop, args=(args, context, health, done)),
        threading.Thread(target=chat_loop, args=(args, context, password, chats, done)),
    ]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    while True:
        if args.stop_file and Path(args.stop_file).exists():
            break
        if args.duration and time.monotonic() - start >= args.duration:
            break
        time.sleep(0.2)
    done.set()
    for thread in threads:
        thread.join()
    result = {
        "seconds": round(time.monotonic() - start, 1),
        "health": health.result(),
        "chats": chats.result(),
    }
    text = json.dumps(result, indent=2)
    if args.out:
        Path(args.out).write_text(text + "\n")
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
