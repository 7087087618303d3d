"""HTTP/1.1 on a socket, by hand and with limits: reading requests, writing responses and chunks.

Hand-written rather than ``http.server`` so that every limit is ours and exact: how long a
client may take to send its request head, how large the head and the body may be, and what
goes back when they are broken. Broken HTTP is answered as Go's net/http (under kube-apiserver)
answers it: a short plain-text 400 or 431 and the connection closed; an over-large body gets
kube-apiserver's 413 Status.
"""

from __future__ import annotations

import re
import socket
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.client import responses

from ..api.server import MAX_BODY_BYTES
from ..api.status import entity_too_large

MAX_HEADER_BYTES = 1 << 20      # Go's http.DefaultMaxHeaderBytes
RECV_SIZE = 64 * 1024
TLS_HANDSHAKE = b"\x16"   # the first byte of a TLS ClientHello record
_METHOD = re.compile(rb"[A-Z]{1,20}")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_TARGET = re.compile(rb"[\x21-\x7e]+")


class ClientGone(Exception):
    """The client closed the connection, or sent nothing in time: close without an answer."""


@dataclass
class HttpError(Exception):
    """A request that cannot be served: answer this and close the connection."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"

    @classmethod
    def plain(cls, status: int) -> "HttpError":
        """Go's plain-text answer to broken HTTP, e.g. ``400 Bad Request``."""
        return cls(status, f"{status} {responses.get(status, '')}".encode())


@dataclass
class HttpRequest:
    method: str
    target: str
    version: str
    headers: dict[str, str] = field(default_factory=dict)   # lower-case names
    body: bytes | None = None

    @property
    def keep_alive(self) -> bool:
        connection = self.headers.get("connection", "").lower()
        if self.version == "HTTP/1.0":
            return "keep-alive" in connection
        return "close" not in connection


@dataclass
class HttpLimits:
    """What one connection may cost; every default is a documented kube-apiserver/Go figure or
    a generous bound. Tests shrink the timeouts."""

    max_in_flight: int = 400            # requests served at once, watches aside (--max-requests-inflight)
    max_connections: int = 512          # beyond it the server stops accepting until one closes
    header_timeout: float = 10.0        # to send a request's line and headers (Go: ReadHeaderTimeout)
    idle_timeout: float = 90.0          # a kept-alive connection waiting for its next request
    body_timeout: float = 60.0          # to send the whole body once the head is in
    write_timeout: float = 10.0         # a client that stops reading a response
    max_header_bytes: int = MAX_HEADER_BYTES
    max_body_bytes: int = MAX_BODY_BYTES
    watch_buffer_bytes: int = 1 << 20   # per watch, between the simulation and the socket
    watch_backlog_bytes: int = 4 << 20  # per watch, queued in the simulation; beyond it: closed


class Connection:
    """One accepted socket: reads requests under deadlines, writes whole responses."""

    def __init__(self, sock: socket.socket, limits: HttpLimits):
        self.sock, self.limits = sock, limits
        self._buffer = bytearray()
        self.requests = 0

    # -- reading -------------------------------------------------------------------------------

    def read_request(self) -> HttpRequest:
        """The next request, or ClientGone (EOF, or silence past the timeouts) / HttpError."""
        limits = self.limits
        if self.requests and not self._buffer:  # kept alive: wait for the next request to start
            self._recv_until(lambda: bool(self._buffer), time.monotonic() + limits.idle_timeout)
        deadline = time.monotonic() + limits.header_timeout
        self._recv_until(lambda: b"\r\n\r\n" in self._buffer or len(self._buffer) > limits.max_header_bytes
                         or self._buffer[:1] == TLS_HANDSHAKE, deadline)
        if self._buffer[:1] == TLS_HANDSHAKE:  # an https client: answered at once, as Go's server does,
            raise HttpError.plain(400)         # so its TLS layer fails now ("first record does not look
                                               # like a TLS handshake") instead of waiting for a timeout
        end = self._buffer.find(b"\r\n\r\n")
        if end < 0 or end > limits.max_header_bytes:
            raise HttpError.plain(431)
        head = bytes(self._buffer[:end])
        del self._buffer[:end + 4]
        request = parse_head(head)
        request.body = self._read_body(request)
        self.requests += 1
        return request

    def _read_body(self, request: HttpRequest) -> bytes | None:
        headers, limit = request.headers, self.limits.max_body_bytes
        deadline = time.monotonic() + self.limits.body_timeout
        encoding = headers.get("transfer-encoding", "").lower()
        if encoding:
            if "content-length" in headers:  # both: a smuggling attempt, as Go refuses it
                raise HttpError.plain(400)
            if encoding != "chunked":
                raise HttpError.plain(501)
            self._continue(request)
            return self._read_chunked(limit, deadline)
        length_text = headers.get("content-length")
        if length_text is None:
            return None
        if not (length_text.isascii() and length_text.isdigit()):
            raise HttpError.plain(400)
        length = int(length_text)
        if length > limit:
            raise too_large(limit)
        self._continue(request)
        self._recv_until(lambda: len(self._buffer) >= length, deadline)
        body = bytes(self._buffer[:length])
        del self._buffer[:length]
        return body

    def _continue(self, request: HttpRequest) -> None:
        """Answer ``Expect: 100-continue`` (curl sends it for larger bodies and waits for it)."""
        if request.headers.get("expect", "").lower() == "100-continue":
            self.send(b"HTTP/1.1 100 Continue\r\n\r\n")

    def _read_chunked(self, limit: int, deadline: float) -> bytes:
        body = bytearray()
        while True:
            self._recv_until(lambda: b"\r\n" in self._buffer or len(self._buffer) > 1024, deadline)
            line_end = self._buffer.find(b"\r\n")
            size_text = bytes(self._buffer[:line_end]).split(b";")[0].strip() if line_end >= 0 else b""
            if line_end < 0 or not re.fullmatch(rb"[0-9a-fA-F]{1,8}", size_text):
                raise HttpError.plain(400)
            size = int(size_text, 16)
            if len(body) + size > limit:
                raise too_large(limit)
            need = line_end + 2 + size + 2
            self._recv_until(lambda: len(self._buffer) >= need, deadline)
            if self._buffer[need - 2:need] != b"\r\n":
                raise HttpError.plain(400)
            body += self._buffer[line_end + 2:need - 2]
            del self._buffer[:need]
            if size == 0:  # (trailers are not supported: the empty line must follow)
                return bytes(body)

    def _recv_until(self, done, deadline: float) -> None:
        while not done():
            left = deadline - time.monotonic()
            if left <= 0:
                raise ClientGone("timed out")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(RECV_SIZE)
            except (socket.timeout, TimeoutError):
                raise ClientGone("timed out") from None
            except OSError as exc:
                raise ClientGone(str(exc)) from None
            if not data:
                raise ClientGone("closed")
            self._buffer += data

    def client_closed(self) -> bool:
        """Has the client gone away? (Checked without blocking while a watch sends nothing.)"""
        try:
            self.sock.settimeout(0)
            data = self.sock.recv(RECV_SIZE, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            return False
        except OSError:
            return True
        if data and len(self._buffer) < self.limits.max_header_bytes:
            # a pipelined next request: keep it for later (and never let it grow unbounded)
            self._buffer += self.sock.recv(len(data))
        return not data or len(self._buffer) >= self.limits.max_header_bytes

    # -- writing -------------------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        self.sock.settimeout(self.limits.write_timeout)
        self.sock.sendall(data)

    def send_response(self, status: int, headers: dict[str, str], body: bytes, close: bool) -> None:
        head = response_head(status, {**headers, "Content-Length": str(len(body))}, close)
        self.send(head + body)

    def send_error(self, error: HttpError) -> None:
        self.send_response(error.status, {"Content-Type": error.content_type}, error.body, close=True)


def parse_head(head: bytes) -> HttpRequest:
    """The request line and headers; anything malformed is Go's 400."""
    lines = head.split(b"\r\n")
    parts = lines[0].split(b" ")
    if len(parts) != 3 or not _METHOD.fullmatch(parts[0]) or not _TARGET.fullmatch(parts[1]):
        raise HttpError.plain(400)
    if parts[2] not in (b"HTTP/1.1", b"HTTP/1.0"):
        raise HttpError.plain(505 if parts[2].startswith(b"HTTP/") else 400)
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, colon, value = line.partition(b":")
        if not colon or not _TOKEN.fullmatch(name) or b"\n" in value or b"\r" in value:
            raise HttpError.plain(400)  # also obsolete line folding, which Go refuses
        key = name.decode("ascii").lower()
        text = value.strip(b" \t").decode("latin-1")
        if key == "content-length" and key in headers and headers[key] != text:
            raise HttpError.plain(400)
        headers[key] = f"{headers[key]}, {text}" if key in headers and key != "content-length" else text
    if parts[2] == b"HTTP/1.1" and "host" not in headers:
        raise HttpError(400, b"400 Bad Request: missing required Host header")
    return HttpRequest(parts[0].decode("ascii"), parts[1].decode("ascii"), parts[2].decode("ascii"), headers)


def too_large(limit: int) -> HttpError:
    """kube-apiserver's 413 Status for a body over the limit (read no further)."""
    error = entity_too_large(limit)
    return HttpError(413, error.body(), error.content_type())


def response_head(status: int, headers: dict[str, str], close: bool = False) -> bytes:
    lines = [f"HTTP/1.1 {status} {responses.get(status, 'Unknown')}",
             "Cache-Control: no-cache, private", f"Date: {formatdate(usegmt=True)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def chunk(payload: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(payload), payload)


LAST_CHUNK = b"0\r\n\r\n"
