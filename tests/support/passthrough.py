"""A loopback HTTP pass-through in front of the real LiteLLM proxy, for tests and benchmarks.

It forwards every request unchanged, records each call (method, path, query, status, and the JSON body
with every raw key and the admin token redacted) so tests can count proxy calls and check what was sent,
and can inject faults on matching requests:

  drop_before  close the connection without forwarding (the proxy never sees the request)
  drop_after   forward, then close without answering (the proxy acted; the answer is lost)
  delay        wait `delay` seconds, then forward (past the client's read timeout)
  status       answer `status` itself (429 with Retry-After, 502, 503, 504, ...) without forwarding
  truncate     forward, then send the headers and only half the body before closing

and can make the proxy unreachable: `stall_connections()` stops accepting and fills the listen queue, so
every new connection times out while connecting, until `resume_connections()`.

    with PassThrough(upstream_url) as tap:
        tap.inject("drop_after", method="POST", path="/key/generate")
        ... point the client at tap.url ...
        assert tap.count(path="/key/generate") == 2

An optional `rewrite` hook sees every forwarded answer and may replace it (benchmarks use it to give a
third-party tool what it needs from this proxy); it can fetch more from the proxy with the same method and
path and another query string, and `upstream_count` counts those extra requests too:

    def rewrite(method, path, query, status, payload, fetch):  # fetch(query) -> (status, payload)
        return status, payload
    with PassThrough(upstream_url, rewrite=rewrite) as tap: ...
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.client
import json
import re
import socket
import ssl
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

FAULTS = ("drop_before", "drop_after", "delay", "status", "truncate")


@dataclasses.dataclass
class Call:
    method: str
    path: str
    query: str
    status: Optional[int]  # None when the pass-through answered nothing
    fault: Optional[str] = None
    upstream: int = 1  # requests the proxy saw for this call (0: answered here; > 1: a rewrite fetched more)
    body: Any = None  # the request's JSON body, raw keys redacted ("sk-[redacted]"); None without a body


@dataclasses.dataclass
class Fault:
    kind: str
    method: Optional[str] = None
    path: Optional[str] = None
    times: int = 1
    status: int = 503
    delay: float = 0.0
    retry_after: Optional[float] = None
    skip: int = 0  # matching calls let through before the fault starts (to hit the 3rd /key/update)

    def matches(self, method: str, path: str) -> bool:
        return self.times > 0 and (self.method in (None, method)) and (self.path in (None, path))


Fetch = Callable[[str], "tuple[int, bytes]"]
Rewrite = Callable[[str, str, str, int, bytes, Fetch], "tuple[int, bytes]"]


class PassThrough:
    def __init__(self, upstream: str, rewrite: Optional[Rewrite] = None, tls: Optional[ssl.SSLContext] = None) -> None:
        parts = urlsplit(upstream)
        self.rewrite = rewrite
        self.tls = tls  # serve HTTPS with this server context (the upstream stays plain HTTP)
        self._upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0  # requests being handled (a delayed one is recorded only when it is forwarded)
        self._faults: list[Fault] = []
        self.calls: list[Call] = []
        self.access_log: list[str] = []  # request lines as an access log would write them
        self._server: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None
        self._stall_after: Optional[tuple[str, str]] = None
        self._stalled: list[socket.socket] = []

    # ---------------------------------------------------------------- control
    @property
    def url(self) -> str:
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    def start(self) -> "PassThrough":
        tap = self

        class Handler(_Handler):
            passthrough = tap

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        if self.tls is not None:
            self._server.socket = self.tls.wrap_socket(self._server.socket, server_side=True)
        self._server.daemon_threads = True
        self._serve()
        return self

    def _serve(self) -> None:
        assert self._server is not None
        # A short poll interval: stop() (shutdown) waits for it, once per test.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()

    def stall_connections(self, after: Optional[tuple[str, str]] = None) -> None:
        """Make every new connection time out while connecting (an unreachable proxy): stop accepting and
        fill the listen queue, so the kernel answers no more connection requests. With `after` (method,
        path): once the next such call has been forwarded, before its answer is sent."""
        if after is not None:
            with self._lock:
                self._stall_after = after
            return
        assert self._server is not None
        self._server.shutdown()
        address = self._server.server_address[:2]
        for _ in range(self._server.request_queue_size + 2):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(address)
            self._stalled.append(filler)

    def resume_connections(self) -> None:
        with self._lock:
            self._stall_after = None
        if not self._stalled:
            return
        for filler in self._stalled:
            filler.close()
        self._stalled.clear()
        self._serve()

    def _stall_if_due(self, method: str, path: str) -> None:
        with self._lock:
            due = self._stall_after == (method, path)
            if due:
                self._stall_after = None
        if due:
            self.stall_connections()

    def stop(self) -> None:
        for filler in self._stalled:
            filler.close()
        self._stalled.clear()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> "PassThrough":
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def inject(self, kind: str, *, method: Optional[str] = None, path: Optional[str] = None, times: int = 1,
               status: int = 503, delay: float = 0.0, retry_after: Optional[float] = None, skip: int = 0) -> None:
        if kind not in FAULTS:
            raise ValueError(f"fault must be one of {FAULTS}, got {kind!r}")
        with self._lock:
            self._faults.append(Fault(kind, method, path, times, status, delay, retry_after, skip))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()
        self.resume_connections()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.access_log.clear()
            self._faults.clear()
        self.resume_connections()

    def bodies(self, *, method: Optional[str] = "POST", path: Optional[str] = None) -> list[Any]:
        """The redacted JSON bodies of the calls seen, in order, optionally only one method/path."""
        with self._lock:
            return [c.body for c in self.calls if (method in (None, c.method)) and (path in (None, c.path))]

    def count(self, *, method: Optional[str] = None, path: Optional[str] = None, writes: bool = False) -> int:
        """Calls seen, optionally only one method/path, or only those that change something (POSTs)."""
        with self._lock:
            return sum(
                1
                for c in self.calls
                if (method in (None, c.method)) and (path in (None, c.path)) and (not writes or c.method == "POST")
            )

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until no request is being handled (a delayed request the client gave up on still reaches
        the proxy, later); True when idle. Call before asserting on the proxy's state or on counts."""
        with self._idle:
            return self._idle.wait_for(lambda: self._in_flight == 0, timeout)

    @contextlib.contextmanager
    def _busy(self):  # type: ignore[no-untyped-def]
        with self._idle:
            self._in_flight += 1
        try:
            yield
        finally:
            with self._idle:
                self._in_flight -= 1
                self._idle.notify_all()

    def upstream_count(self, *, method: Optional[str] = None, path: Optional[str] = None) -> int:
        """Requests the proxy itself saw (a rewrite may fetch several per call; local answers count 0)."""
        with self._lock:
            return sum(
                c.upstream for c in self.calls if (method in (None, c.method)) and (path in (None, c.path))
            )

    # --------------------------------------------------------------- internals
    def _take_fault(self, method: str, path: str) -> Optional[Fault]:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path) and fault.skip > 0:
                    fault.skip -= 1
                elif fault.matches(method, path):
                    fault.times -= 1
                    return dataclasses.replace(fault)
        return None

    def _record(self, call: Call, request_line: str, body: bytes = b"") -> None:
        call.body = _redacted_json(body)
        with self._lock:
            self.calls.append(call)
            self.access_log.append(request_line)


_RAW_KEY = re.compile(r"sk-[A-Za-z0-9_\-.~+/=]{4,}")


def _redacted_json(body: bytes) -> Any:
    """A request body as tests may keep it: parsed JSON with every raw key (`sk-...`) redacted."""
    if not body:
        return None
    try:
        value = json.loads(body)
    except ValueError:
        return "<not JSON>"

    def redact(item: Any) -> Any:
        if isinstance(item, str):
            return _RAW_KEY.sub("sk-[redacted]", item)
        if isinstance(item, dict):
            return {k: redact(v) for k, v in item.items()}
        if isinstance(item, list):
            return [redact(v) for v in item]
        return item

    return redact(value)


class _Handler(BaseHTTPRequestHandler):
    passthrough: PassThrough
    protocol_version = "HTTP/1.1"

    def log_message(self, *_: object) -> None:  # quiet; calls are recorded instead
        pass

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def _handle(self) -> None:
        with self.passthrough._busy():
            self._serve()

    def _serve(self) -> None:
        tap = self.passthrough
        path, _, query = self.path.partition("?")
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fault = tap._take_fault(self.command, path)
        kind = fault.kind if fault else None
        line = f'"{self.command} {self.path} HTTP/1.1"'

        if kind == "drop_before":
            tap._record(Call(self.command, path, query, None, kind, upstream=0), line, body)
            return self._drop()
        if kind == "status":
            assert fault is not None
            tap._record(Call(self.command, path, query, fault.status, kind, upstream=0), line, body)
            payload = json.dumps({"error": {"message": f"injected {fault.status}", "code": str(fault.status)}}).encode()
            extra = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return self._answer(fault.status, payload, {"Content-Type": "application/json", **extra})
        if kind == "delay":
            assert fault is not None
            time.sleep(fault.delay)

        try:
            status, headers, payload = self._forward(body)
        except OSError:
            tap._record(Call(self.command, path, query, 502, "upstream"), line, body)
            return self._answer(502, b'{"error": {"message": "upstream unreachable"}}', {})
        upstream = 1
        if tap.rewrite is not None and kind is None:
            def fetch(other_query: str) -> tuple[int, bytes]:
                nonlocal upstream
                upstream += 1
                got_status, _, got = self._forward(b"", f"{path}?{other_query}" if other_query else path)
                return got_status, got

            status, payload = tap.rewrite(self.command, path, query, status, payload, fetch)
        tap._record(Call(self.command, path, query, None if kind in ("drop_after", "truncate") else status, kind,
                         upstream=upstream), line, body)
        tap._stall_if_due(self.command, path)
        if kind == "drop_after":
            return self._drop()
        if kind == "truncate":
            self.send_response(status)
            self.send_header("Content-Type", headers.get("content-type", "application/json"))
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            return self._drop()
        self._answer(status, payload, {"Content-Type": headers.get("content-type", "application/json")})

    def _forward(self, body: bytes, target: Optional[str] = None) -> tuple[int, dict[str, str], bytes]:
        host, port = self.passthrough._upstream
        conn = http.client.HTTPConnection(host, port, timeout=120)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            if target is not None:  # another request than the client's (a rewrite's fetch): no body
                headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
            conn.request(self.command, target or self.path, body=body or None, headers=headers)
            response = conn.getresponse()
            return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        finally:
            conn.close()

    def _answer(self, status: int, payload: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


class _QuietServer(ThreadingHTTPServer):
    """No traceback on stderr when a client hung up first (it timed out, or a fault dropped the line)."""

    def handle_error(self, request, client_address) -> None:  # type: ignore[no-untyped-def]
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)
