"""An outage of an S3 endpoint, for tests: an HTTP proxy in front of moto's server that goes down mid-run.

A stopped moto server loses its objects, and a real store does not: in front
of moto this proxy forwards requests until it has let `uploads_allowed` PUTs
through; the next request gets its connection closed unanswered, and from then
on the proxy refuses every connection (its port is closed). The objects moto
took stay. `restart()` brings the proxy back on the same port, so a rerun of
the same command reaches the same store.
"""

from __future__ import annotations

import contextlib
import http.client
import http.server
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "upgrade"}


class OutageProxy:
    """`url` is the endpoint the code under test uses; moto (`upstream`) stays up behind it."""

    def __init__(self, upstream: str, uploads_allowed: int | None, *, hang: bool = False):
        self.upstream = urlsplit(upstream).netloc
        self.uploads_allowed = uploads_allowed
        # With `hang`, the first PUT over the allowance is held unanswered (`reached` is set) until `release`.
        self.hang, self.reached, self.release = hang, threading.Event(), threading.Event()
        self.down = False
        self._lock = threading.Lock()
        self._server: http.server.ThreadingHTTPServer | None = None
        self._stopping: threading.Thread | None = None
        self.port = 0
        self._start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _start(self) -> None:
        handler = type("Handler", (_Forwarding,), {"proxy": self})
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def admit(self, method: str) -> bool:
        """Whether this request goes through; the first PUT over the allowance takes the endpoint down."""
        with self._lock:
            if self.down:
                return False
            if method == "PUT" and self.uploads_allowed is not None:
                if self.uploads_allowed == 0:
                    self.down = True
                    self._stopping = threading.Thread(target=self.stop, daemon=True)  # not in a handler's own thread
                    self._stopping.start()
                    return False
                self.uploads_allowed -= 1
            return True

    def stop(self) -> None:
        """Close the port: new connections are refused."""
        with self._lock:
            server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def restart(self, uploads_allowed: int | None = None) -> None:
        """The endpoint is back, on the same port, in front of the same store."""
        if self._stopping is not None:
            self._stopping.join()
        self.stop()
        self.down, self.uploads_allowed = False, uploads_allowed
        self._start()


class _Forwarding(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as boto3 uses it; also answers boto3's Expect: 100-continue
    proxy: OutageProxy

    def _forward(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if not self.proxy.admit(self.command):
            if self.proxy.hang and not self.proxy.reached.is_set():
                self.proxy.reached.set()
                self.proxy.release.wait()
            self.close_connection = True  # hang up without an answer, as a crashed endpoint does
            return
        upstream = http.client.HTTPConnection(self.proxy.upstream, timeout=60)
        try:
            upstream.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
            for name, value in self.headers.items():
                if name.lower() not in _HOP_BY_HOP:
                    upstream.putheader(name, value)
            upstream.endheaders(body)
            response = upstream.getresponse()
            answer = response.read()
        finally:
            upstream.close()
        self.send_response(response.status, response.reason)
        for name, value in response.getheaders():
            if name.lower() not in _HOP_BY_HOP and name.lower() not in ("content-length", "date", "server"):
                self.send_header(name, value)
        self.send_header("Content-Length", response.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(answer)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(answer)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

    def log_message(self, *args) -> None:
        pass


@contextlib.contextmanager
def outage_proxy(upstream: str, uploads_allowed: int | None, *, hang: bool = False) -> Iterator[OutageProxy]:
    proxy = OutageProxy(upstream, uploads_allowed, hang=hang)
    try:
        yield proxy
    finally:
        proxy.release.set()
        proxy.stop()
