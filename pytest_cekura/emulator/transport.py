"""The emulator's socket layer: HTTP/1.1 framing, keep-alive, dropped connections, shutdown.

Why the standard library's ``ThreadingHTTPServer``: the emulator ships inside the plugin, so
it must not add dependencies to users' test environments. A thread per connection serves
several concurrent pollers at once, HTTP/1.1 keep-alive (``protocol_version`` plus an exact
``Content-Length`` on every answer) lets clients reuse connections, and ``daemon_threads``
means an idle kept-alive connection can never block interpreter exit. Answers are built in
memory from a few small records, so even a bulk GET of 100 run ids takes a few milliseconds.

Everything above the bytes (routing, handlers, faults) is ``routing.Api``; dropping a
connection is done here (``_Handler._drop``), the ``Api`` only says how.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import sys
import threading
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from pytest_cekura.emulator.routing import Api
from pytest_cekura.emulator.wire import Request, Response, detail, is_digits

_MAX_LINE = 65537
#: Content-Length a ``drop_before`` partial answer announces; none of its body is sent.
_PARTIAL_PLACEHOLDER_LENGTH = 1024


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; requires Content-Length on every answer
    # Headers and body go out as separate writes; with Nagle's algorithm on, the client's
    # delayed ACK would add ~40 ms to every request. Buffer the answer and send it at once.
    disable_nagle_algorithm = True
    wbufsize = -1
    server: Server

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def do_PUT(self) -> None:
        self._serve()

    def do_PATCH(self) -> None:
        self._serve()

    def do_DELETE(self) -> None:
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the per-request stderr line; the request log is the record."""

    def _serve(self) -> None:
        body = self._read_body()
        if body is None:
            message = "Unreadable request body: send a valid Content-Length (or chunked) body."
            self._send(detail(400, message))
            return
        split = urlsplit(self.path)
        request = Request(
            method=self.command,
            path=split.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers=self.headers,
            body=body,
        )
        try:
            response = self.server.api.handle(request)
        except Exception:
            # A bug in the emulator must not look like a dropped connection to the client.
            traceback.print_exc(file=sys.stderr)
            response = detail(500, "Internal emulator error; see the emulator's stderr.")
        if response.drop is not None:
            self._drop(response)
        else:
            self._send(response)

    def _drop(self, response: Response) -> None:
        """Hang up without a complete answer, as a crashing server or proxy would.

        ``close`` sends FIN before any byte of an answer. ``partial`` sends a complete header
        block (the real answer's for ``drop_after``; a 200 whose body never comes for
        ``drop_before``, which did nothing) and only part of the body it announces, then FIN:
        the connection breaks mid-response, which every HTTP client reports (httpx
        RemoteProtocolError, curl exit 18, urllib IncompleteRead). Half a header block would
        not do: curl and Python's http.client end the headers at EOF and see an empty 200.
        ``reset`` sends RST (httpx ReadError). Nothing is raised here, so the server logs
        nothing and goes on serving.
        """
        mode = response.drop
        self.close_connection = True  # the stream is unusable for any further request
        if mode == "partial":
            if response.body:
                status, body, announced = response.status, response.body, len(response.body)
            else:
                status, body, announced = 200, b"", _PARTIAL_PLACEHOLDER_LENGTH
            self.send_response(status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(announced))
            for name, value in response.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body[: len(body) // 2])  # always fewer bytes than announced
            self.wfile.flush()
        if mode == "reset":
            # A zero linger timeout makes close() send RST and discard unsent data; the
            # server must then close without shutdown(SHUT_WR) first, which would send a FIN
            # the client could read as a clean end of stream before the RST arrives.
            linger = struct.pack("ii", 1, 0)
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)
            self.server.reset_on_close(self.connection)
            return
        with contextlib.suppress(OSError):  # the client may have hung up already
            self.connection.shutdown(socket.SHUT_RDWR)

    def _read_body(self) -> bytes | None:
        """The request body, or None if its framing is broken (the connection is then closed)."""
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        length = self.headers.get("Content-Length")
        if length is None:
            return b""
        if not is_digits(length.strip()):
            self.close_connection = True  # the rest of the stream cannot be framed
            return None
        return self.rfile.read(int(length))

    def _read_chunked(self) -> bytes | None:
        # Clients streaming a body (e.g. httpx with an iterator) send no Content-Length.
        parts: list[bytes] = []
        while True:
            size_field = self.rfile.readline(_MAX_LINE).split(b";")[0].strip()
            try:
                size = int(size_field, 16)
            except ValueError:
                self.close_connection = True
                return None
            if size == 0:
                while self.rfile.readline(_MAX_LINE) not in (b"\r\n", b"\n", b""):
                    pass  # skip trailer fields
                return b"".join(parts)
            parts.append(self.rfile.read(size))
            self.rfile.readline(_MAX_LINE)  # the CRLF closing each chunk

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)


class Server(ThreadingHTTPServer):
    daemon_threads = True  # idle keep-alive connections must never block exit
    #: The listen backlog: socketserver's default of 5 resets connections when a few hundred
    #: clients connect at once (a load test, or xdist workers polling together).
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], api: Api) -> None:
        self.api = api
        self._connections: set[socket.socket] = set()
        self._resets: set[socket.socket] = set()  # dropped with RST: close without FIN
        self._connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def reset_on_close(self, connection: socket.socket) -> None:
        with self._connections_lock:
            self._resets.add(connection)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
            reset = request in self._resets
            self._resets.discard(request)
        if reset:
            self.close_request(request)  # no shutdown(SHUT_WR): see _Handler._drop
            return
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Unblock handler threads waiting on kept-alive connections (used by stop())."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients hanging up mid-answer (or stop() closing sockets) are normal, not errors.
        if isinstance(sys.exception(), ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


def shutdown_promptly(server: Server) -> None:
    """``server.shutdown()`` without waiting out serve_forever's select() timeout.

    The serve loop only notices the shutdown flag when select() returns; a throwaway
    connection to the listening socket makes it return at once, which keeps test suites that
    start an emulator per test fast.
    """
    stopper = threading.Thread(target=server.shutdown, name="cekura-emulator-stop", daemon=True)
    stopper.start()
    host, port = server.server_address[:2]
    wake_host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1"}.get(str(host), str(host))
    while stopper.is_alive():
        with contextlib.suppress(OSError):
            socket.create_connection((wake_host, int(port)), timeout=0.2).close()
        stopper.join(0.01)
