"""The socket layer of the hostile server: HTTP/1.1 with keep-alive around a `Service`."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
import traceback
from collections.abc import Iterator
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from .service import API_BASE, Reply, Request, Service


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(30)
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_GET

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        parts = urlsplit(self.path)
        service = self.server.service
        req = service.record(
            self.command, parts.path, dict(parse_qsl(parts.query, keep_blank_values=True)),
            {name.lower(): value for name, value in self.headers.items()}, body,
        )
        try:
            reply = service.answer(req)
        except Exception:
            service.errors.append(traceback.format_exc())
            reply = Reply(500, b'{"error":"Internal Server Error","code":"INTERNAL_ERROR"}')
        try:
            self._write(reply)
        finally:
            req.ended = time.monotonic()

    def _write(self, reply: Reply) -> None:
        try:
            phrase = HTTPStatus(reply.status).phrase
        except ValueError:
            phrase = "Unknown"
        names = {name.lower() for name, _ in reply.headers}
        lines = [f"HTTP/1.1 {reply.status} {phrase}"]
        lines += [f"{name}: {value}" for name, value in reply.headers]
        if "content-length" not in names:
            lines.append(f"Content-Length: {len(reply.body)}")
        lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        try:
            if reply.trickle_s is None:
                self.wfile.write(head + reply.body)
                return
            self.wfile.write(head)
            self.wfile.flush()
            for i in range(len(reply.body)):
                if self.server.stopping.wait(reply.trickle_s):
                    break
                self.wfile.write(reply.body[i : i + 1])
                self.wfile.flush()
            self.close_connection = True
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, service: Service) -> None:
        self.service = service
        self.stopping = threading.Event()
        super().__init__(("127.0.0.1", 0), _Handler)


class HostileServer:
    """A running hostile server: where it listens and what it was asked."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self._httpd = _Server(service)
        self.port = int(self._httpd.server_address[1])
        self.netloc = f"127.0.0.1:{self.port}"
        self.root = f"http://{self.netloc}"
        self.url = self.root + API_BASE
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="hostile", daemon=True
        )

    @property
    def requests(self) -> list[Request]:
        return list(self.service.requests)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def serving(service: Service) -> Iterator[HostileServer]:
    server = HostileServer(service)
    server.start()
    try:
        yield server
    finally:
        server.stop()
