"""core/v1 Events as the kubelet, the scheduler and the controllers record them, kept cheap.

A pod's life records half a dozen Events (Scheduled, Pulling, Pulled, Created, Started, Killing,
and warnings when things go wrong). Written to the store as they happen, they would cost a store
write each and more than the rest of the pod's model put together. So the recorder notes each
one in a queue (a tuple: who, what, when) and writes them to the store, in order and with the
times they happened, when a client reads Events, or at once while someone watches them. A run
that never looks at Events pays about a microsecond per Event; one that does sees them all.

As in Kubernetes, the same (object, reason, message, source) again bumps ``count`` and
``lastTimestamp`` of the Event already written; Events older than the event TTL (one hour, as
kube-apiserver's ``--event-ttl``) are dropped before they are written; none are written into a
namespace being deleted (admission refuses them there).
"""

from __future__ import annotations

import hashlib
import uuid
from collections import deque
from datetime import datetime
from typing import Callable

import simpy

from ..api.store import ResourceStore

EVENT_TTL = 3600.0


class EventRecorder:
    def __init__(self, env: simpy.Environment, store: ResourceStore, namespaces: ResourceStore,
                 timestamp: Callable[..., str], epoch: datetime, terminating: Callable[[str], bool]):
        self.env, self.store, self.namespaces = env, store, namespaces
        self.timestamp, self.epoch, self.terminating = timestamp, epoch, terminating
        self.pending: deque[tuple] = deque()
        self._names: dict[str, dict[tuple, tuple[str, str]]] = {}  # involved uid -> aggregate key -> (ns, name)
        self._serial = 0

    def record(self, obj: dict, events: tuple, type: str, component: str, host: str | None) -> None:
        """Note ``events`` ((reason, message, fieldPath) triples) about ``obj``, happening now."""
        meta = obj["metadata"]
        now = self.env._now
        pending = self.pending
        pending.append((now, obj.get("kind", "Pod"), obj.get("apiVersion", "v1"), meta.get("namespace") or "default",
                        meta["name"], meta.get("uid"), meta.get("resourceVersion"), events, type, component, host))
        while pending[0][0] < now - EVENT_TTL:  # past the TTL before anyone asked: gone, as on a cluster
            pending.popleft()
        if self.store.watchers.count:  # someone watches Events: they go out as they happen
            self.flush()

    def flush(self) -> None:
        """Write every pending Event to the store, oldest first."""
        pending, now = self.pending, self.env._now
        while pending:
            entry = pending.popleft()
            if entry[0] >= now - EVENT_TTL:
                self._write(entry)

    def forget(self, uid: str) -> None:
        """The object is gone: no later Event about it will aggregate with the earlier ones."""
        self._names.pop(uid, None)

    def _write(self, entry: tuple) -> None:
        at, kind, api_version, namespace, name, uid, rv, events, type_, component, host = entry
        found = self.namespaces.get("", namespace)
        if found is None or found["metadata"].get("deletionTimestamp") or self.terminating(namespace):
            return
        for reason, message, field_path in events:
            self._write_one(at, kind, api_version, namespace, name, uid, rv, reason, message, type_, component,
                            host, field_path)

    def _write_one(self, at, kind, api_version, namespace, name, uid, rv, reason, message, type_, component,
                   host, field_path) -> None:
        when = self.timestamp(at - self.env._now)
        aggregate = (reason, message, component, host)
        names = self._names.setdefault(uid, {})
        known = names.get(aggregate)
        if known is not None and self.store.get(*known) is not None:
            self.store.update(*known, lambda e: {**e, "count": e.get("count", 1) + 1, "lastTimestamp": when})
            return
        self._serial += 1
        nanos = int(round(at * 1e9)) + int(self.epoch.timestamp()) * 10**9 + self._serial
        event_name = f"{name[:230]}.{nanos:x}"
        involved = {"kind": kind, "namespace": namespace, "name": name, "uid": uid, "apiVersion": api_version,
                    "resourceVersion": rv}
        if field_path:
            involved["fieldPath"] = field_path
        names[aggregate] = (namespace, event_name)
        self.store.create({
            "kind": "Event", "apiVersion": "v1",
            "metadata": {"name": event_name, "namespace": namespace, "uid": stable_uid(namespace, event_name),
                         "creationTimestamp": when},
            "involvedObject": involved, "reason": reason, "message": message,
            "source": {"component": component, **({"host": host} if host else {})},
            "firstTimestamp": when, "lastTimestamp": when, "count": 1, "type": type_,
            "eventTime": None, "reportingComponent": component, "reportingInstance": host or ""})


def stable_uid(*parts: str) -> str:
    """A uid that draws nothing from the world's RNG (so Events never change what pods draw)."""
    return str(uuid.UUID(hashlib.sha256("/".join(parts).encode()).hexdigest()[:32]))
