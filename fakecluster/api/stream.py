"""A server-to-client byte pipe on the virtual clock: the socket under a watch response.

The server side writes whole HTTP chunks, ends the body, resets the connection or stalls it.
The client side is a raw IO object that ``http.client`` reads through a buffered reader, so
chunked decoding, ``socket.timeout`` and urllib3's ``ReadTimeoutError`` are the real ones.
"""

from __future__ import annotations

import io
import socket
from collections import deque
from typing import Callable

import simpy

from ..kernel.engine import Kernel
from .wire import chunk


class Stream:
    """One streaming HTTP response body in flight."""

    def __init__(self, kernel: Kernel, name: str = "watch stream"):
        self._kernel = kernel
        # Written pieces, read in order; a piece read in part is replaced by a view of its rest. A
        # queue, not one bytearray: a reader megabytes behind would have the whole backlog copied
        # on each growth of the array.
        self._pieces: deque[bytes | memoryview] = deque()
        self._pending = 0
        self._reader: simpy.Event | None = None  # what the reader waits on, while it waits
        self.name = name
        self.ended = False        # the server finished the body (clean end)
        self.reset = False        # the connection was dropped
        self.stalled_until = 0.0  # no bytes reach the client before this virtual time
        self.client_closed = False
        self.on_client_close: list[Callable[[], None]] = []

    # -- server side ---------------------------------------------------------------------------

    def write_chunk(self, payload: bytes) -> None:
        self.write_framed(chunk(payload))

    def write_framed(self, framed: bytes) -> None:
        """A whole chunk, already framed (``wire.event_chunk``): queued as it is, not copied."""
        if self._open():
            self._put(framed)

    def write_raw(self, data: bytes) -> None:
        if self._open():
            self._put(bytes(data))

    def end(self) -> None:
        """Finish the body cleanly (the last chunk), as at timeoutSeconds."""
        if self._open():
            self._put(b"0\r\n\r\n")
            self.ended = True

    def _put(self, piece: bytes) -> None:
        if piece:
            self._pieces.append(piece)
            self._pending += len(piece)
            self._wake()

    def drop(self) -> None:
        """Drop the connection: the client's next read fails with a connection reset."""
        if self._open():
            self.reset = True
            self._wake()

    def stall(self, seconds: float | None) -> None:
        """Hold back every byte for ``seconds`` (None: until the client gives up)."""
        until = float("inf") if seconds is None else self._kernel.env.now + seconds
        self.stalled_until = max(self.stalled_until, until)
        if seconds is not None:
            self._kernel.env.timeout(seconds).callbacks.append(lambda _: self._wake())

    @property
    def pending(self) -> int:
        """Bytes written and not yet read."""
        return self._pending

    def _open(self) -> bool:
        return not (self.ended or self.reset or self.client_closed)

    def _wake(self) -> None:
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.succeed()

    # -- client side ---------------------------------------------------------------------------

    def read_into(self, target, read_timeout: float | None) -> int:
        env = self._kernel.env
        deadline = None if read_timeout is None else env.now + read_timeout
        while True:
            if self.client_closed:
                raise ValueError("I/O operation on closed stream")
            if self.reset:
                raise ConnectionResetError(104, "Connection reset by peer")
            if self._pending and env.now >= self.stalled_until:
                return self._take(target)
            if self.ended and not self._pending:
                return 0
            reader = self._reader = env.event()
            left = None if deadline is None else deadline - env.now
            if left is not None and left <= 0 or not self._kernel.wait(reader, left, f"read on {self.name}"):
                raise socket.timeout("timed out")

    def _take(self, target) -> int:
        """Move as many pending bytes as fit into ``target``; the count."""
        pieces, room, n = self._pieces, len(target), 0
        while pieces and n < room:
            piece = pieces.popleft()
            size = len(piece)
            if size > room - n:  # the target fills up inside this piece: its rest stays first
                size = room - n
                view = memoryview(piece)
                pieces.appendleft(view[size:])  # a view, not a copy: a piece may be megabytes
                piece = view[:size]
            target[n:n + size] = piece
            n += size
        self._pending -= n
        return n

    def close_from_client(self) -> None:
        if not self.client_closed:
            self.client_closed = True
            for callback in self.on_client_close:
                callback()


class StreamReader(io.RawIOBase):
    """The client's end of a Stream, as the raw file under ``socket.makefile('rb')``."""

    def __init__(self, stream: Stream, read_timeout: float | None):
        self._stream = stream
        self._read_timeout = read_timeout

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        return self._stream.read_into(memoryview(buffer).cast("B"), self._read_timeout)

    def close(self) -> None:
        if not self.closed:
            self._stream.close_from_client()
        super().close()


class StreamSocket:
    """Just enough of a socket for ``http.client.HTTPResponse`` to read a response from."""

    def __init__(self, stream: Stream, read_timeout: float | None):
        self._stream, self._read_timeout = stream, read_timeout

    def makefile(self, mode: str = "rb", *args, **kwargs):
        return io.BufferedReader(StreamReader(self._stream, self._read_timeout))

    def close(self) -> None:
        self._stream.close_from_client()
