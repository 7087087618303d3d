"""Record what the client received in a simulated run, then replay it with no simulation under it.

The client-only floor of a benchmark is the same client work answered from memory: no API
server, no cluster model, no simulation kernel, no greenlets. Two levels are recorded:

* **bytes** (``RecordingPoolManager``): for every request the client sent (method, URL, body),
  the answer exactly as the client got it: status, headers and body, and for a watch every piece
  the client read from its socket, as it read it (HTTP head and chunked body).
  ``ReplayPoolManager`` serves those bytes back as ``urllib3.HTTPResponse`` objects; a watch body
  is read by ``http.client`` from an in-memory socket that hands out the recorded pieces, so
  chunked decoding and buffer refills cost what they cost in the simulated run. It checks that
  it is asked the same requests (method, URL, body) and that every answer gets used.
* **client calls** (``RecordingApi``): which ``CoreV1Api`` method a program called, with which
  arguments (the very model objects it passed). ``replay_calls`` makes exactly those calls again
  and consumes each watch as the program did (``Watch().stream`` building model objects, or the
  raw line splitter and ``json.loads``), for programs whose code cannot simply be run again
  without the simulation (the executor).

fakecluster itself is not changed: the recording wraps its gateway and the watch streams it
hands out.
"""

from __future__ import annotations

import functools
import http.client
import io
import json
from collections import defaultdict, deque
from dataclasses import dataclass, field

import greenlet
import kubernetes.client
import kubernetes.watch
import urllib3
from kubernetes.client.exceptions import ApiException
from kubernetes.watch.watch import iter_resp_lines

from fakecluster.api.server import WatchReply
from fakecluster.cluster import HOST
from fakecluster.doors.transport import FakePoolManager


class ReplayMismatch(AssertionError):
    """The replay asked something the simulated run did not, or left recorded answers unused."""


class RecordingExhausted(Exception):
    """A watch stream's recording ended where the simulated client stopped reading (its process
    was stopped or its read timed out): the replayed consumer stops there too."""


# -- what the client received ---------------------------------------------------------------------

@dataclass
class PlainAnswer:
    status: int
    headers: dict
    body: bytes

    def size(self) -> int:
        return len(self.body)

    def response(self, method: str, url: str, preload: bool) -> urllib3.HTTPResponse:
        # Built exactly as fakecluster.transport builds it, and as urllib3 would over a socket.
        return urllib3.HTTPResponse(
            body=io.BytesIO(self.body), headers=self.headers, status=self.status,
            reason=http.client.responses.get(self.status, ""), preload_content=preload,
            decode_content=True, request_method=method, request_url=url, version=11,
            version_string="HTTP/1.1")


@dataclass
class StreamAnswer:
    # every read the client made on the socket, as it got it: replaying the same pieces makes
    # http.client and urllib3 do the same reads and buffer refills as in the simulated run
    segments: list[bytes] = field(default_factory=list)
    ended: bool = False   # the client read the end of the body (not stopped or timed out)

    def size(self) -> int:
        return sum(map(len, self.segments))

    def response(self, method: str, url: str, preload: bool) -> urllib3.HTTPResponse:
        raw = http.client.HTTPResponse(MemorySocket(self.segments, self.ended), method=method)
        raw.begin()
        return urllib3.HTTPResponse(
            body=raw, headers=urllib3.HTTPHeaderDict(raw.getheaders()), status=raw.status,
            reason=raw.reason, preload_content=preload, decode_content=True,
            original_response=raw, request_method=method, request_url=url,
            version=raw.version, version_string="HTTP/1.1")


@dataclass
class Exchange:
    method: str
    url: str
    body: bytes | None
    answer: PlainAnswer | StreamAnswer


class TappingGateway:
    """Wraps the cluster's Gateway and keeps a copy of each answer as the client will see it.

    The copy is kept per greenlet: a request may block in virtual time (latency, a watch
    waiting for a resourceVersion) while other processes make theirs."""

    def __init__(self, gateway):
        self._gateway = gateway
        self.kernel = gateway.kernel          # FakePoolManager sleeps on it between retries
        self._last: dict = {}

    def exchange(self, request, read_timeout=None):
        answer = self._gateway.exchange(request, read_timeout)
        if isinstance(answer, WatchReply):
            copy = StreamAnswer()
            tap_stream(answer.stream, copy)
        else:
            copy = PlainAnswer(answer.status, dict(answer.headers), answer.body)
        self._last[greenlet.getcurrent()] = copy
        return answer

    def take(self) -> PlainAnswer | StreamAnswer:
        return self._last.pop(greenlet.getcurrent())


def tap_stream(stream, copy: StreamAnswer) -> None:
    """Keep a copy of each piece the client reads from this watch stream, and whether it read
    the end of it."""
    read_into = stream.read_into

    def recording_read_into(target, read_timeout):
        n = read_into(target, read_timeout)
        if n:
            copy.segments.append(bytes(target[:n]))
        else:
            copy.ended = True
        return n

    stream.read_into = recording_read_into   # this instance only; fakecluster is untouched


class RecordingPoolManager(FakePoolManager):
    """The cluster's pool manager, keeping an ``Exchange`` for every request in ``log``."""

    def __init__(self, gateway, **connection_pool_kw):
        super().__init__(TappingGateway(gateway), **connection_pool_kw)
        self.log: list[Exchange] = []

    def urlopen(self, method, url, redirect=True, **kw):
        response = super().urlopen(method, url, redirect=redirect, **kw)
        self.log.append(Exchange(method, url, as_bytes(kw.get("body")), self.gateway.take()))
        return response


def record_bytes(api_client: kubernetes.client.ApiClient, gateway) -> list[Exchange]:
    """Make ``api_client`` (one of the cluster's) record every exchange; returns the log."""
    recorder = RecordingPoolManager(gateway)
    api_client.rest_client.pool_manager = recorder
    return recorder.log


def as_bytes(body) -> bytes | None:
    return body.encode("utf-8") if isinstance(body, str) else body


def received_bytes(log: list[Exchange]) -> int:
    return sum(exchange.answer.size() for exchange in log)


# -- serving the recorded bytes ------------------------------------------------------------------

class MemorySocket:
    """Just enough socket for http.client: a buffered reader over the recorded pieces."""

    def __init__(self, segments: list[bytes], ended: bool = True):
        self._segments, self._ended = segments, ended

    def makefile(self, mode="rb", *args, **kwargs):
        return io.BufferedReader(SegmentReader(self._segments, self._ended))   # as socket.makefile("rb")

    def close(self):
        pass


class SegmentReader(io.RawIOBase):
    """A raw socket file whose reads return the recorded pieces, one per read; then EOF if the
    simulated client read the end, else ``RecordingExhausted``."""

    def __init__(self, segments: list[bytes], ended: bool = True):
        self._pending = deque(segments)
        self._ended = ended

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._pending:
            if self._ended:
                return 0
            raise RecordingExhausted("the simulated client read no further")
        piece = self._pending.popleft()
        n = min(len(buffer), len(piece))
        buffer[:n] = piece[:n]
        if n < len(piece):   # the client asked for less: keep the rest for its next read
            self._pending.appendleft(piece[n:])
        return n


class ReplayPoolManager(urllib3.PoolManager):
    """Answers each (method, URL) with the next recorded answer for it, in recorded order."""

    def __init__(self, log: list[Exchange]):
        super().__init__()
        self._queues: dict[tuple, deque] = defaultdict(deque)
        for exchange in log:
            self._queues[(exchange.method, exchange.url)].append(exchange)

    def urlopen(self, method, url, redirect=True, **kw):
        queue = self._queues.get((method, url))
        if not queue:
            raise ReplayMismatch(f"the floor sent a request the simulated run did not: {method} {url}")
        exchange = queue.popleft()
        if exchange.body != as_bytes(kw.get("body")):
            raise ReplayMismatch(f"request body differs from the recorded one: {method} {url}")
        return exchange.answer.response(method, url, kw.get("preload_content", True))

    def unanswered(self) -> int:
        return sum(len(queue) for queue in self._queues.values())


def replay_client(log: list[Exchange], replay: ReplayPoolManager | None = None,
                  ) -> tuple[kubernetes.client.ApiClient, ReplayPoolManager]:
    """A real ApiClient, configured as the cluster's are, whose answers come from ``log``
    (through ``replay``, a ReplayPoolManager of ``log`` or of a subclass, if given)."""
    configuration = kubernetes.client.Configuration()
    configuration.host = HOST
    client = kubernetes.client.ApiClient(configuration)
    replay = ReplayPoolManager(log) if replay is None else replay
    client.rest_client.pool_manager = replay
    return client, replay


# -- client calls: record a program's CoreV1Api calls, make them again -----------------------------

@dataclass(slots=True)
class ClientCall:
    method: str
    args: tuple
    kwargs: dict

    @property
    def is_watch(self) -> bool:
        return bool(self.kwargs.get("watch"))


class RecordingApi:
    """Stands in for a ``CoreV1Api``: each public method call is appended to ``calls`` (with the
    very objects passed), then made. ``functools.wraps`` keeps the signature and docstring that
    ``Watch.stream`` reads to find the model type."""

    def __init__(self, api: kubernetes.client.CoreV1Api, calls: list[ClientCall]):
        self._api, self._calls = api, calls

    def __getattr__(self, name):
        attribute = getattr(self._api, name)
        if name.startswith("_") or not callable(attribute):
            return attribute

        @functools.wraps(attribute)
        def call(*args, **kwargs):
            self._calls.append(ClientCall(name, args, dict(kwargs)))
            return attribute(*args, **kwargs)
        return call


@dataclass
class ReplayTally:
    calls: int = 0
    watches: int = 0
    events: int = 0        # watch events decoded (models or dicts)
    errors: int = 0        # ApiExceptions, as the program got them


def replay_calls(api: kubernetes.client.CoreV1Api, calls: list[ClientCall], raw: bool,
                 progress=None) -> ReplayTally:
    """Make ``calls`` again, in order, and decode what comes back as the program did.

    Watches: with ``raw`` the program called the list method with ``watch=True`` and split the
    lines itself, one ``json.loads`` each (the executor's raw-event path); otherwise it read
    ``Watch().stream`` (a model object per event). Plain answers come back as models, or with
    ``_preload_content=False`` as the response whose ``data`` the program ``json.loads``.
    """
    tally = ReplayTally()
    for index, call in enumerate(calls):
        tally.calls += 1
        try:
            if call.is_watch:
                tally.watches += 1
                consume = _consume_raw_watch if raw else _consume_model_watch
                tally.events += consume(getattr(api, call.method), call)
            else:
                _call_plain(getattr(api, call.method), call)
        except ApiException:
            tally.errors += 1
        if progress is not None and index % 1000 == 0:
            progress(index, len(calls))
    return tally


def _call_plain(method, call: ClientCall) -> None:
    result = method(*call.args, **call.kwargs)
    if call.kwargs.get("_preload_content") is False:
        json.loads(result.data)


def _consume_model_watch(method, call: ClientCall) -> int:
    """As the executor's model path reads it: Watch.stream, the type and raw object of each."""
    kwargs = {k: v for k, v in call.kwargs.items() if k not in ("watch", "_preload_content")}
    events = 0
    try:
        for event in kubernetes.watch.Watch().stream(method, *call.args, **kwargs):
            event["type"], event["raw_object"]
            events += 1
    except RecordingExhausted:
        pass
    return events


def _consume_raw_watch(method, call: ClientCall) -> int:
    """As the executor's raw path reads it: the client's line splitter and json.loads."""
    response = method(*call.args, **call.kwargs)
    events = 0
    try:
        for line in iter_resp_lines(response):
            if not line:
                continue
            event = json.loads(line)
            if event["type"] == "ERROR":   # the executor raises it, as Watch.stream does
                status = event["object"]
                raise ApiException(status=status.get("code"),
                                   reason=f"{status.get('reason')}: {status.get('message')}")
            events += 1
    except RecordingExhausted:
        pass
    finally:
        response.close()
        response.release_conn()
    return events
