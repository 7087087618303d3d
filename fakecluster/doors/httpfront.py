"""The HTTP front door: the simulated API server on a loopback socket, in real time.

The second front door beside the in-process transport, onto the same Gateway and ApiServer.
Each connection has a thread; each request it reads goes through the driver's inbox into the
simulation thread, where a simulated process calls ``Gateway.exchange`` (so latency, injected
errors, outages and dropped connections apply) and hands the answer back. A watch stays a
simulated process: it reads the Stream as the in-process transport does and passes each event
through a bounded ``WatchPipe`` to the connection's thread, which writes real HTTP chunks.
A stall in the simulation means no chunks are written, so real clients hit their own read
timeouts; a client that goes away closes the Stream from the client side.

What a client can cost is bounded (see ``HttpLimits``): requests in flight (as kube-apiserver's
max-in-flight filter: beyond the limit a request is answered 429, and long-running requests such
as watches do not count), connections (beyond the limit the server stops accepting until one
closes, so the rest wait in the listen backlog), the time to send a request, its size, and the
bytes a watch may queue for a slow reader before the server closes it (as kube-apiserver closes
watchers that cannot keep up).
"""

from __future__ import annotations

import itertools
import logging
import queue
import socket
import struct
import threading
import time
from collections import Counter

from ..api.server import Reply, Request, parse_bool
from ..api.status import service_unavailable, too_many_requests
from ..faults import ConnectionFault
from ..kernel.realtime import DriverStopped, RealtimeDriver
from .exchange import CLOSE, WATCH, ChunkDecoder, Exchange
from .gateway import Gateway
from .httpapi import HttpApi
from .httpwire import LAST_CHUNK, ClientGone, Connection, HttpError, HttpLimits, chunk, response_head

log = logging.getLogger("fakecluster.http")

POLL = 0.2              # seconds: how often a waiting connection thread looks up (stop, client gone)
LINGER = 0.5            # seconds to drain a client's unread bytes before closing on an error
LONG_RUNNING_SUBRESOURCES = ("log", "exec", "attach", "portforward", "proxy")
READ_SIZE = 64 * 1024
GONE = object()         # the client left before its answer came
_ids = itertools.count(1)


def long_running(request: Request) -> bool:
    """kube-apiserver's long-running request check: watches and streaming subresources, which
    the max-in-flight filter does not count."""
    parts = request.parts
    if parts[2:3] == ["watch"] or (request.method == "GET" and parse_bool(request.query, "watch")):
        return True
    return len(parts) >= 5 and parts[-1] in LONG_RUNNING_SUBRESOURCES and parts[-3] == "pods"


class HttpFrontDoor:
    """Accepts connections on a listening socket and serves each in a thread of its own."""

    def __init__(self, listener: socket.socket, gateway: Gateway, api: HttpApi, driver: RealtimeDriver,
                 limits: HttpLimits):
        self.listener, self.gateway, self.api, self.driver = listener, gateway, api, driver
        self.kernel = gateway.kernel
        self.limits = limits
        self.stats: Counter = Counter()
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._connections: dict[int, tuple[socket.socket, threading.Thread]] = {}
        self._accepter: threading.Thread | None = None
        self._in_flight = 0   # requests being served that are not long-running

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.listener.settimeout(POLL)
        self._accepter = threading.Thread(target=self._accept_loop, name="kubesim-http-accept", daemon=True)
        self._accepter.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop accepting, close every connection, and wait for their threads."""
        self._stopping.set()
        _shutdown(self.listener)   # wakes a blocked accept() at once (Linux); else the poll does
        if self._accepter is not None:
            self._accepter.join(timeout)
        self.listener.close()
        with self._lock:
            connections = list(self._connections.values())
        for sock, _ in connections:
            _shutdown(sock)
        for _, thread in connections:
            thread.join(timeout)

    @property
    def open_connections(self) -> int:
        with self._lock:
            return len(self._connections)

    def count(self, key: str, n: int = 1) -> None:
        with self._lock:
            self.stats[key] += n

    def peak(self, key: str, value: int) -> None:
        with self._lock:
            self.stats[key] = max(self.stats[key], value)

    # -- connections ---------------------------------------------------------------------------

    def _accept_loop(self) -> None:
        while not self._stopping.is_set():
            if self.open_connections >= self.limits.max_connections:
                self.count("accept_paused")  # the rest wait in the listen backlog, as on a busy server
                self._stopping.wait(POLL / 10)
                continue
            try:
                sock, _ = self.listener.accept()
            except (socket.timeout, TimeoutError):
                continue
            except OSError:
                if self._stopping.is_set():
                    return
                continue  # e.g. EMFILE: try again, the connections that are in still work
            self._admit(sock)

    def _admit(self, sock: socket.socket) -> None:
        with self._lock:
            number = next(_ids)
            thread = threading.Thread(target=self._serve, args=(sock, number),
                                      name=f"kubesim-http-{number}", daemon=True)
            self._connections[number] = (sock, thread)
            self.stats["peak_connections"] = max(self.stats["peak_connections"], len(self._connections))
        thread.start()

    def _serve(self, sock: socket.socket, number: int) -> None:
        conn = Connection(sock, self.limits)
        try:
            while not self._stopping.is_set():
                request = conn.read_request()
                self.count("requests")
                if not self._answer(conn, request):
                    break
        except HttpError as error:
            self.count(f"http_{error.status}")
            self._reply_and_close(conn, error.status, {"Content-Type": error.content_type}, error.body)
        except ClientGone:
            pass
        except OSError:  # the client went away mid-answer, or wrote nothing for too long
            self.count("connection_errors")
        except Exception:  # never a traceback to the client, and the server stays up
            self.count("internal_errors")
            log.exception("serving a connection failed")
        finally:
            _close(sock)
            with self._lock:
                self._connections.pop(number, None)

    def _reply_and_close(self, conn: Connection, status: int, headers: dict, body: bytes) -> None:
        """Answer, then drain what the client is still sending before closing, so that it reads
        the answer instead of a connection reset (Go's lingering close does the same)."""
        try:
            conn.send_response(status, headers, body, close=True)
            conn.sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + LINGER
            conn.sock.settimeout(LINGER)
            while conn.sock.recv(READ_SIZE) and time.monotonic() < deadline:
                pass
        except OSError:
            pass
        finally:
            _close(conn.sock)

    # -- one request ---------------------------------------------------------------------------

    def _answer(self, conn: Connection, http_request) -> bool:
        """Serve one request; True when the connection stays open for the next one."""
        request = Request.from_url(http_request.method, http_request.target, http_request.headers,
                                   http_request.body)
        if long_running(request):
            return self._serve_request(conn, http_request, request)
        if not self._take_flight():
            return self._too_many_requests(conn, http_request)
        try:
            return self._serve_request(conn, http_request, request)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _take_flight(self) -> bool:
        """A place among the requests in flight (False: the limit is reached)."""
        with self._lock:
            if self._in_flight >= self.limits.max_in_flight:
                return False
            self._in_flight += 1
            self.stats["peak_in_flight"] = max(self.stats["peak_in_flight"], self._in_flight)
            return True

    def _too_many_requests(self, conn: Connection, http_request) -> bool:
        """The max-in-flight filter's answer: a plain-text 429 with Retry-After, the connection kept."""
        self.count("refused_too_many_requests")
        error = too_many_requests(1)
        close = not http_request.keep_alive
        conn.send_response(429, {"Content-Type": error.content_type(), **error.headers}, error.body(), close)
        return not close

    def _serve_request(self, conn: Connection, http_request, request: Request) -> bool:
        exchange = Exchange(request, self.limits.watch_buffer_bytes)
        try:
            self.driver.post(lambda: self.kernel.spawn(self._in_simulation, exchange,
                                                       name=f"http {request.method} {request.path}"))
        except DriverStopped:
            return self._unavailable(conn)
        answer = self._await(exchange, conn)
        if answer is GONE:
            self._post(exchange.close_from_client)   # in case the answer is a watch
            return False
        if self._stopping.is_set():
            return False
        if answer is None:
            return self._unavailable(conn)
        if answer == CLOSE:  # a dropped-connection fault: no answer at all
            _reset(conn.sock)
            return False
        if isinstance(answer, Reply):
            close = not http_request.keep_alive
            conn.send_response(answer.status, answer.headers, answer.body, close)
            return not close
        return self._stream(conn, exchange, http_request.keep_alive)

    def _await(self, exchange: Exchange, conn: Connection):
        """The simulation's answer; None if the simulation died, GONE if the client left first
        (a slow answer, e.g. injected latency, must not hold the connection's slot for nothing)."""
        while not self._stopping.is_set():
            try:
                return exchange.answers.get(timeout=POLL)
            except queue.Empty:
                if not self.driver.alive:
                    return None
                if conn.client_closed():
                    return GONE
        return None

    def _unavailable(self, conn: Connection) -> bool:
        error = service_unavailable("the simulation is not running")
        conn.send_response(503, {"Content-Type": error.content_type()}, error.body(), close=True)
        return False

    def _in_simulation(self, exchange: Exchange) -> None:
        """The simulated side of one request: through the Gateway, then forward a watch."""
        try:
            answer = self.gateway.exchange(exchange.request)
        except ConnectionFault:
            exchange.answers.put(CLOSE)
            return
        if isinstance(answer, Reply):
            exchange.answers.put(answer)
            return
        if exchange.abandoned:   # the client left while the watch was on its way
            answer.stream.close_from_client()
            return
        exchange.stream, exchange.process = answer.stream, self.kernel.current()
        exchange.content_type = answer.content_type
        answer.watcher.max_pending = self.limits.watch_backlog_bytes  # after the initial events
        exchange.answers.put(WATCH)
        self._forward(exchange)

    def _forward(self, exchange: Exchange) -> None:
        """Read the watch's Stream (in virtual time) and pass each event to the connection."""
        stream, pipe = exchange.stream, exchange.pipe
        rewrite = self.api.watch_filter(exchange.request)
        decoder, buffer = ChunkDecoder(), bytearray(READ_SIZE)
        try:
            while True:
                n = stream.read_into(memoryview(buffer), None)
                if n == 0:
                    pipe.finish("end")
                    return
                for payload in decoder.feed(bytes(buffer[:n])):
                    self._put(exchange, rewrite(payload) if rewrite else payload)
        except (ConnectionResetError, ValueError):  # dropped (a fault, or a watcher too slow)
            if not exchange.abandoned:
                self.count("watches_dropped")
            pipe.finish("reset")

    def _put(self, exchange: Exchange, payload: bytes) -> None:
        while True:
            room = self.kernel.env.event()

            def wake(room=room):  # called from the connection thread: back through the inbox
                self._post(lambda: room.triggered or room.succeed())

            if exchange.pipe.put(payload, wake):
                return
            self.kernel.wait(room, None, "room in a watch client's buffer")

    # -- a watch on the wire -------------------------------------------------------------------

    def _stream(self, conn: Connection, exchange: Exchange, keep_alive: bool) -> bool:
        """Write the watch's events as HTTP chunks until it ends, breaks, or the client leaves."""
        ended = False
        try:
            conn.send(response_head(200, {"Content-Type": exchange.content_type, "Transfer-Encoding": "chunked"}))
            while not self._stopping.is_set():
                chunks, outcome = exchange.pipe.take(POLL)
                if chunks:
                    conn.send(b"".join(chunk(payload) for payload in chunks))
                if outcome == "end":
                    conn.send(LAST_CHUNK)
                    ended = True
                    return keep_alive
                if outcome == "reset":
                    _reset(conn.sock)
                    return False
                if not chunks and conn.client_closed():
                    return False
            return False
        except OSError:  # the client stopped reading (write timeout) or went away
            self.count("watch_clients_lost")
            return False
        finally:
            self.peak("peak_watch_buffer_bytes", exchange.pipe.peak_bytes)
            if not ended:
                self._post(exchange.close_from_client)

    def _post(self, job) -> None:
        """Hand a job to the simulation thread, unless it has stopped (then there is nothing to do)."""
        try:
            self.driver.post(job)
        except DriverStopped:
            pass


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def _close(sock: socket.socket) -> None:
    try:
        sock.close()
    except OSError:
        pass


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as a dropped connection looks to the client."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    _close(sock)
