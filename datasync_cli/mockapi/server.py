"""The socket layer: a threading HTTP/1.1 server with keep-alive around MockApp."""

from __future__ import annotations

import contextlib
import dataclasses
import gc
import re
import signal
import socket
import sys
import threading
from collections.abc import Iterator
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any, TextIO
from urllib.parse import parse_qsl, urlsplit

from ..clock import Clock
from .app import MockApp
from .config import MockConfig
from .counters import MockCounters
from .messages import Request, Response
from .routes import API_BASE

DEFAULT_CLIENT_KEY = "mock-key"
_SECRET_PARAM = re.compile(r"(api_key)=[^&\s\"]*", re.IGNORECASE)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _MockHTTPServer

    def setup(self) -> None:
        super().setup()
        # Idle keep-alive connections are closed after this long, as Node does.
        self.connection.settimeout(self.server.app.config.keepalive_timeout)
        # Headers and body go out in one write; without NODELAY small replies can stall.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def _serve(self) -> None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length, self.close_connection = 0, True
        if length > 0:
            self.rfile.read(length)  # keep the connection usable for the next request
        parts = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=parts.path,
            query=dict(parse_qsl(parts.query, keep_blank_values=True)),
            headers={name.lower(): value for name, value in self.headers.items()},
        )
        try:
            response = self.server.app.handle(request)
        except Exception as exc:  # a simulator bug must look like a 500, not a hang-up
            self._log(f"internal error: {exc!r}")
            response = Response(
                500,
                b'{"error":"Internal Server Error","message":"Unexpected simulator error",'
                b'"code":"INTERNAL_ERROR"}',
                [("Content-Type", "application/json; charset=utf-8"), ("X-Powered-By", "Express")],
            )
        if response.drop:
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)
            return
        self._write(response)

    def _write(self, response: Response) -> None:
        try:
            phrase = HTTPStatus(response.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = [f"HTTP/1.1 {response.status} {phrase}"]
        lines.extend(f"{name}: {value}" for name, value in response.headers)
        lines.append(f"Content-Length: {len(response.body)}")
        lines.append(f"Date: {formatdate(usegmt=True)}")
        if self.close_connection:
            lines.append("Connection: close")
        else:
            lines.append("Connection: keep-alive")
            idle = max(1, int(self.server.app.config.keepalive_timeout))
            lines.append(f"Keep-Alive: timeout={idle}")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")
        self.log_request(response.status, len(response.body))
        try:
            self.wfile.write(head + response.body)
        except OSError:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        # Also receives idle keep-alive timeouts, which are normal: only logged on request.
        if self.server.app.config.log_requests:
            self._log(format % args)

    def _log(self, message: str) -> None:
        # The request line may carry ?api_key=: never log a key.
        line = _SECRET_PARAM.sub(r"\1=***", message)
        sys.stderr.write(f"{self.address_string()} - [{self.log_date_time_string()}] {line}\n")


class _MockHTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: MockApp) -> None:
        self.app = app
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        self.app.counters.add("connections")
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Hang up on idle keep-alive clients so stopping does not wait for their timeout."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class MockServer:
    """A running simulator: where it listens, the key to use, and what it has served."""

    def __init__(self, config: MockConfig, clock: Clock | None = None) -> None:
        self.app = MockApp(config, clock)
        self._httpd = _MockHTTPServer((config.host, config.port), self.app)
        host, port = self._httpd.server_address[:2]
        self.config = dataclasses.replace(config, port=int(port))
        self.root_url = f"http://{_url_host(str(host))}:{port}"
        self.url = self.root_url + API_BASE
        self.api_key = config.api_key or DEFAULT_CLIENT_KEY
        self._thread: threading.Thread | None = None

    @property
    def counters(self) -> MockCounters:
        return self.app.counters

    def start(self) -> None:
        # A short poll interval makes stop() quick; the loop itself is idle otherwise.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, args=(0.05,), name="mock-api", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        self.app.stopping.set()
        self._httpd.shutdown()
        self._httpd.close_connections()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)


def _url_host(host: str) -> str:
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


@contextlib.contextmanager
def running_mock(config: MockConfig, clock: Clock | None = None) -> Iterator[MockServer]:
    """A simulator on a free port in a background thread, stopped on exit."""
    server = MockServer(dataclasses.replace(config, port=0), clock)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def serve(config: MockConfig, out: TextIO = sys.stdout) -> None:
    """Serve until SIGINT or SIGTERM; prints one line saying where and with which key."""
    # Pages are built from many short-lived dicts without cycles: collect cycles rarely.
    gc.set_threshold(100_000, 50, 100)
    server = MockServer(config)
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        key_hint = (
            "send the X-API-Key given by --api-key / MOCK_API_KEY"
            if config.api_key
            else f"any non-empty X-API-Key is accepted, e.g. {DEFAULT_CLIENT_KEY}"
        )
        print(
            f"datasync mock-api serving {config.events} events at {server.url} ({key_hint})",
            file=out,
            flush=True,
        )
        while not stop.wait(0.5):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
