#!/usr/bin/env python3
"""A stand-in app host for the load balancer's tests, on 127.0.0.1:PORT:
/health answers 200 (400 without a Host header, as the real app host does:
nginx passes the empty Host on and the app refuses it); an Upgrade request
gets 101, then every byte is echoed back prefixed with the server's name; any
other request gets JSON naming the server ("app1" on 8701, "app2" on 8702)
and the request's headers."""

import base64
import hashlib
import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
NAME = {8701: "app1", 8702: "app2"}.get(PORT, str(PORT))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        if self.headers.get("Upgrade"):
            self.send_response(101)
            self.send_header("Upgrade", self.headers["Upgrade"])
            self.send_header("Connection", "Upgrade")
            key = self.headers.get("Sec-WebSocket-Key", "") + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
            accept = base64.b64encode(hashlib.sha1(key.encode()).digest()).decode()
            self.send_header("Sec-WebSocket-Accept", accept)
            self.end_headers()
            self.wfile.flush()
            while data := self.connection.recv(4096):
                self.connection.sendall(NAME.encode() + b":" + data)
            self.close_connection = True
            return
        if not self.headers.get("Host"):
            self.send_response(400)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        body = (
            b"ok"
            if self.path == "/health"
            else json.dumps({"server": NAME, "headers": dict(self.headers)}).encode()
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
