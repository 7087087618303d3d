"""What crosses between a connection's thread and the simulation thread for one request.

An ``Exchange`` carries the request in and the answer out (a Reply, or word that a watch has
started, or that the connection must drop). A watch's events then flow through its
``WatchPipe``, bounded in bytes; ``ChunkDecoder`` turns the Stream's HTTP framing back into
event payloads on the simulation side, so they can be rewritten (Table rows) and re-framed.
"""

from __future__ import annotations

import queue
import threading
from collections import deque

from ..api.server import Request
from ..api.stream import Stream

WATCH, CLOSE = "watch", "close"   # the answers that are not a Reply


class WatchPipe:
    """Watch events from the simulation thread to one connection thread, bounded in bytes.

    When it is full the simulated forwarder waits (``put`` returns False and keeps its wake-up
    call for when the connection thread makes room); meanwhile events pile up in the Stream,
    where the watcher's own limit closes a watch whose client cannot keep up.
    """

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes
        self.peak_bytes = 0
        self.outcome: str | None = None   # "end" (clean) or "reset"
        self._cond = threading.Condition()
        self._chunks: deque[bytes] = deque()
        self._bytes = 0
        self._on_room = None

    def put(self, payload: bytes, on_room) -> bool:
        with self._cond:
            if self._chunks and self._bytes + len(payload) > self.max_bytes:
                self._on_room = on_room
                return False
            self._chunks.append(payload)
            self._bytes += len(payload)
            self.peak_bytes = max(self.peak_bytes, self._bytes)
            self._cond.notify()
            return True

    def finish(self, outcome: str) -> None:
        with self._cond:
            if self.outcome is None:
                self.outcome = outcome
            self._cond.notify()

    def take(self, timeout: float) -> tuple[list[bytes], str | None]:
        """Every waiting payload and, once they are all out, how the stream ended."""
        with self._cond:
            if not self._chunks and self.outcome is None:
                self._cond.wait(timeout)
            chunks = list(self._chunks)
            self._chunks.clear()
            self._bytes = 0
            on_room, self._on_room = (self._on_room, None) if chunks else (None, self._on_room)
            outcome = self.outcome
        if on_room is not None:
            on_room()
        return chunks, outcome


class ChunkDecoder:
    """Undoes a Stream's HTTP framing (the response head, then chunks) back into payloads."""

    def __init__(self):
        self._buffer = bytearray()
        self._in_body = False

    def feed(self, data: bytes) -> list[bytes]:
        buffer = self._buffer
        buffer += data
        at = 0
        if not self._in_body:
            head_end = buffer.find(b"\r\n\r\n")
            if head_end < 0:
                return []
            at, self._in_body = head_end + 4, True
        payloads = []
        while True:
            line_end = buffer.find(b"\r\n", at)
            if line_end < 0:
                break
            size = int(buffer[at:line_end], 16)
            if size == 0 or len(buffer) < line_end + 4 + size:
                break  # the last chunk (the read then ends), or a payload not all here yet
            payloads.append(bytes(buffer[line_end + 2:line_end + 2 + size]))
            at = line_end + 4 + size
        del buffer[:at]
        return payloads


class Exchange:
    """One request on its way into the simulation, and its answer on the way back."""

    def __init__(self, request: Request, pipe_bytes: int):
        self.request = request
        self.answers: queue.SimpleQueue = queue.SimpleQueue()   # one Reply, WATCH or CLOSE
        self.pipe = WatchPipe(pipe_bytes)
        self.stream: Stream | None = None
        self.content_type = "application/json"   # of a streamed answer (a followed log: text/plain)
        self.process = None
        self.abandoned = False   # the client side is gone (set in the simulation thread)

    def close_from_client(self) -> None:
        """In the simulation thread: the client went away; end the watch's process and stream."""
        self.abandoned = True
        if self.stream is not None:
            self.stream.close_from_client()
        if self.process is not None and self.process.is_alive():
            self.process.kill()
