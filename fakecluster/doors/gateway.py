"""What every request passes before and after the API server: faults, latency, accounting.

Both front doors (the in-process urllib3 transport and the HTTP server) hand requests here.
"""

from __future__ import annotations

import json
import random
from collections import Counter
from dataclasses import dataclass

from ..api.server import ApiServer, Reply, Request, WatchReply, error_reply, parse_bool
from ..api.status import ApiError
from ..faults import ConnectionFault, Faults
from ..kernel.engine import Kernel, Livelock

# More API calls than this at one virtual instant is a client spinning, not a busy moment (a
# 100,000-task run sends a few thousand at its busiest instant).
LIVELOCK_CALLS = 10_000

_ITEM_VERBS = {"GET": "get", "PUT": "update", "PATCH": "patch", "DELETE": "delete", "POST": "create"}
_COLLECTION_VERBS = {"GET": "list", "POST": "create", "DELETE": "deletecollection"}


def classify(request: Request) -> tuple[str, str, str | None]:
    """(verb, resource, name) of a request, as Kubernetes' RequestInfo would name them: a request
    for no resource (discovery, /version, health) has the HTTP method for its verb and no resource."""
    if len(request.parts) < 3 or request.parts[0] != "api":
        return request.method.lower(), "", None
    match request.parts:  # /api/v1/[namespaces/NAMESPACE/]RESOURCE[/NAME...]
        case [_, _, "namespaces", _, resource, *rest] | [_, _, resource, *rest]:
            name = rest[0] if rest else None
        case _:
            resource, name = "", None
    if name is None:
        verb = _COLLECTION_VERBS.get(request.method) or request.method.lower()
        if verb == "list" and parse_bool(request.query, "watch"):
            verb = "watch"
    else:
        verb = _ITEM_VERBS.get(request.method) or request.method.lower()
    return verb, resource, name


@dataclass(slots=True)  # one per request, kept for the whole run
class Call:
    """One API call as the trace records it."""

    time: float
    verb: str
    resource: str
    name: str | None
    status: int | str


class Gateway:
    def __init__(self, server: ApiServer, kernel: Kernel, rng: random.Random, faults: Faults):
        self.server, self.kernel, self.rng, self.faults = server, kernel, rng, faults
        self.calls: Counter = Counter()         # (verb, status) -> count
        self.log: list[Call] = []
        self.record_log = True
        # Called with (call, request) for every request answered or refused: what an audit log
        # on the API server would see (the invariants count clean-up calls here).
        self.listeners: list = []
        self._instant, self._calls_at_instant = 0.0, 0   # calls at the current virtual instant

    def exchange(self, request: Request, read_timeout: float | None = None) -> Reply | WatchReply:
        """Serve one request in virtual time; raises ConnectionFault or TimeoutError (read timeout).

        The request's latency passes before the server acts on it, so a create with 0.5 s of
        latency exists 0.5 s after it was sent. When the latency is longer than the client's
        read timeout, the client gives up at its timeout but the server still acts when the
        request arrives: the "it was created but the client thinks it failed" case.
        """
        verb, resource, name = classify(request)
        if self.faults.inactive():  # the usual case: served at once, as it came
            return self._answer(request, verb, resource, name)
        if name is None and verb == "create" and self.faults.errors:  # named in injected errors
            name = _body_name(request.body)
        if self.faults.refused(self.kernel.env.now):  # nothing listens: refused at once
            self._account(request, verb, resource, name, "refused")
            raise ConnectionFault("refused")
        delay = self.faults.delay(verb, self.rng)
        if read_timeout is not None and delay > read_timeout:
            self._serve_late(request, delay, verb, resource, name)
            self.kernel.sleep(read_timeout)
            self._account(request, verb, resource, name, "read-timeout")
            raise TimeoutError("timed out")
        if delay:
            self.kernel.sleep(delay)
        return self._serve(request, verb, resource, name)

    def _serve(self, request: Request, verb: str, resource: str, name: str | None):
        try:
            injected = self.faults.check(verb, resource, name, self.kernel.env.now, self.rng)
        except ConnectionFault as fault:
            self._account(request, verb, resource, name, fault.kind)
            raise
        if injected:
            reply = error_reply(injected)
            self._account(request, verb, resource, name, reply.status)
            return reply
        if self.faults.lost_answers and self.faults.answer_lost(verb, resource, self.kernel.env.now, self.rng):
            reply = self.server.handle(request)   # the work is done; the answer never arrives
            if isinstance(reply, WatchReply):
                reply.stream.close_from_client()
            self._account(request, verb, resource, name, "lost")
            raise ConnectionFault("lost")
        return self._answer(request, verb, resource, name)

    def _answer(self, request: Request, verb: str, resource: str, name: str | None):
        """The server's own answer to a request that reached it."""
        reply = self.server.handle(request)
        self._account(request, verb, resource, name, reply.status if isinstance(reply, Reply) else 200)
        return reply

    def _serve_late(self, request, delay, verb, resource, name) -> None:
        """The client gave up, but the server still does the work when the request arrives."""
        def late():
            self.kernel.sleep(delay)
            try:
                reply = self._serve(request, verb, resource, name)
            except ConnectionFault:
                return
            if isinstance(reply, WatchReply):
                reply.stream.close_from_client()
        self.kernel.spawn(late, name=f"late {verb} {resource}")

    def _account(self, request: Request, verb: str, resource: str, name: str | None, status) -> None:
        self.calls[(verb, status)] += 1
        now = self.kernel.env.now
        if now != self._instant:
            self._instant, self._calls_at_instant = now, 0
        self._calls_at_instant += 1
        if self._calls_at_instant > LIVELOCK_CALLS:
            raise Livelock(f"{self._calls_at_instant - 1:,} API calls at virtual time {now:g}s without time "
                           f"passing (the last: {verb} {resource} {name or ''} answered {status}): a client "
                           f"retries with no pause against a server that answers at once; give the cluster "
                           f"api_latency to model the network's round trip")
        if self.record_log or self.listeners:
            call = Call(self.kernel.env.now, verb, resource, name, status)
            if self.record_log:
                self.log.append(call)
            for listener in self.listeners:
                listener(call, request)


def _body_name(body: bytes | None) -> str | None:
    """metadata.name of a create's body, as admission sees it (None for generateName)."""
    try:
        meta = json.loads(body or b"{}").get("metadata") or {}
    except (ValueError, AttributeError):
        return None
    name = meta.get("name") if isinstance(meta, dict) else None
    return name if isinstance(name, str) and name else None


__all__ = ["Gateway", "classify", "Call", "ApiError"]
