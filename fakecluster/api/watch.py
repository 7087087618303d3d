"""The server side of one watch: filtering, selector transitions, bookmarks and the deadline.

Mirrors kube-apiserver's cache watcher: an object entering the selector is ADDED, one leaving it
is DELETED with its previous content but the event's resourceVersion (no deletionTimestamp:
Airflow's executor reads that as "adopted by another scheduler").
"""

from __future__ import annotations

import itertools
import json

from .selectors import FieldSelector, LabelSelector
from .status import ApiError
from .store import ADDED, DELETED, MODIFIED, Change, ResourceStore, with_rv
from .wire import chunk, event_chunk
from .stream import Stream

_ids = itertools.count(1)


class Watcher:
    def __init__(self, store: ResourceStore, stream: Stream, namespace: str | None,
                 labels: LabelSelector, fields: FieldSelector, bookmarks: bool):
        self.id = next(_ids)
        self.store, self.stream = store, stream
        self.namespace = namespace
        self.labels, self.fields = labels, fields
        self.bookmarks = bookmarks
        self.open = True
        self.sent = 0
        self.max_pending: int | None = None  # slow watchers beyond this are closed silently
        equalities = labels.equalities()
        self.index_label = min(equalities.items()) if equalities else None
        self._plain = labels.is_empty and fields.is_empty
        # The last label set judged, and the verdict: a write that leaves the labels alone keeps
        # the same dict, so the state before and after are judged once between them.
        self._judged: tuple[dict | None, bool] = (None, False)
        stream.on_client_close.append(self.close)

    def matches(self, obj: dict | None) -> bool:
        if obj is None:
            return False
        meta = obj["metadata"]
        if self.namespace is not None and meta.get("namespace") != self.namespace:
            return False
        return self._plain or (self._labels_match(meta.get("labels") or {}) and self.fields.matches(obj))

    def _labels_match(self, labels: dict) -> bool:
        judged, verdict = self._judged
        if labels is not judged:
            verdict = self.labels.matches(labels)
            self._judged = (labels, verdict)
        return verdict

    def offer(self, change: Change) -> None:
        """Send the change as this watcher sees it through its selectors."""
        if not self.open:
            return
        if self.namespace is not None and change.obj["metadata"].get("namespace") != self.namespace:
            return  # an object keeps its namespace: outside the watcher's, no state of it shows
        if self._plain:
            self._send(change.chunk())
        elif change.type == ADDED:
            if self.matches(change.obj):
                self._send(change.chunk())
        elif change.type == MODIFIED:
            now, before = self.matches(change.obj), self.matches(change.prev)
            if now and before:
                self._send(change.chunk())
            elif now:
                self._send(event_chunk(ADDED, change.obj))
            elif before:
                self._send(event_chunk(DELETED, with_rv(change.prev, change.rv)))
        elif self.matches(change.prev):
            self._send(change.chunk())

    def send_added(self, obj: dict) -> None:
        self._send(event_chunk(ADDED, obj))

    def send_bookmark(self, rv: int, initial_events_end: bool = False) -> None:
        meta: dict = {"resourceVersion": str(rv)}
        if initial_events_end:
            meta["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": self.store.kind, "apiVersion": "v1", "metadata": meta}
        self._send(event_chunk("BOOKMARK", obj))

    def send_error(self, error: ApiError) -> None:
        """The ERROR event that ends a watch (410 Expired, 504 Timeout, ...)."""
        self._send(chunk(json.dumps({"type": "ERROR", "object": error.status()},
                                    separators=(",", ":")).encode() + b"\n"))
        self.finish()

    def _send(self, framed: bytes) -> None:
        """One event, framed as its HTTP chunk."""
        if self.max_pending is not None and self.stream.pending > self.max_pending:
            self.stream.drop()  # kube-apiserver closes a watcher that cannot keep up
            self.close()
            return
        self.sent += 1
        self.stream.write_framed(framed)

    def finish(self) -> None:
        """End the stream cleanly (timeoutSeconds reached, or after an ERROR event)."""
        self.stream.end()
        self.close()

    def close(self) -> None:
        if self.open:
            self.open = False
            self.store.watchers.discard(self)
