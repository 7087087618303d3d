"""The object store and watch cache: etcd's revision counter plus kube-apiserver's cacher.

One ``Revision`` is shared by every resource, like etcd's global revision. Each resource keeps
its objects (plain JSON dicts, never mutated in place: every write makes new dicts), a label
index so selector lists cost what they match, a bounded history of changes (the watch cache
window) and the watchers to fan changes out to.
"""

from __future__ import annotations

from collections import Counter, defaultdict, deque
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator

from .cold import HOT_CHANGES, ColdCodec
from .wire import event_chunk, event_chunk_from_json

ADDED, MODIFIED, DELETED = "ADDED", "MODIFIED", "DELETED"
MIN_HISTORY = 100  # the watch cache keeps at least this many changes (defaultLowerBoundCapacity)

Key = tuple[str, str]  # (namespace, name); namespace is "" for cluster-scoped resources


class Revision:
    """The one monotonic resourceVersion counter (etcd's revision).

    It also orders the in-process listeners of every store sharing it: a listener that writes
    (the scheduler binding a pod it was just told about) must not have its change reach the
    other listeners before the change that caused it, or the trace would go back in time.
    Listeners run synchronously inside the write and must not block in virtual time.
    """

    def __init__(self):
        self.value = 0
        self._pending: deque[tuple[list, "Change"]] = deque()
        self._dispatching = False

    def next(self) -> int:
        self.value += 1
        return self.value

    def notify(self, listeners: list, change: "Change") -> None:
        """Call ``listeners`` with ``change`` after those of every earlier change, in RV order."""
        if self._dispatching:  # a listener wrote: delivered once the current change is done
            self._pending.append((listeners, change))
            return
        self._dispatching = True
        try:
            for listener in listeners.copy():
                listener(change)
            while self._pending:
                targets, pending = self._pending.popleft()
                for listener in tuple(targets):
                    listener(pending)
        finally:
            self._dispatching = False
            self._pending.clear()


@dataclass(slots=True)
class Change:
    """One entry of the watch cache: what changed at revision ``rv``. Once cold (see ``cold``),
    its object is a compressed frame read back on demand, and its previous state is read from
    the change that wrote it (kept alive by this reference even when it has left the window)."""

    rv: int
    type: str
    _obj: dict | None    # the new state; for DELETED the last state, stamped with ``rv``
    _prev: dict | None   # the state before, for selector transitions
    at: float = 0.0      # virtual time of the change, for a time-bounded window
    _chunk: bytes | None = field(default=None, repr=False)
    _before: Change | None = field(default=None, repr=False)   # the change whose object is _prev
    _frame: bytes | None = field(default=None, repr=False)
    _codec: ColdCodec | None = field(default=None, repr=False)

    @property
    def obj(self) -> dict:
        return self._obj if self._frame is None else self._codec.unpack(self._frame)

    @property
    def prev(self) -> dict | None:
        return self._prev if self._before is None or self._frame is None else self._before.obj

    def chunk(self) -> bytes:
        """The watch event as sent on the wire (its HTTP chunk), encoded once for every watcher."""
        if self._chunk is not None:
            return self._chunk
        if self._frame is not None:   # a cold change: its object's bytes are in the frame
            return event_chunk_from_json(self.type, self._codec.object_json(self._frame))
        self._chunk = event_chunk(self.type, self._obj)
        return self._chunk

    def freeze(self, codec: ColdCodec) -> None:
        self._frame, self._codec, self._obj = codec.pack(self._obj), codec, None
        if self._before is not None:   # else the previous state stays as it is (none, for ADDED)
            self._prev = None


def key_of(obj: dict) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


def with_rv(obj: dict, rv: int) -> dict:
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(rv)}}


def labels_of(obj: dict | None) -> dict:
    if obj is None:
        return _NO_LABELS
    return obj["metadata"].get("labels") or _NO_LABELS


_NO_LABELS: dict = {}  # shared, never written to


class ResourceStore:
    """Objects of one resource type, their index, their watch-cache window and their watchers."""

    def __init__(self, resource: str, kind: str, namespaced: bool, revision: Revision,
                 history_size: int = 100 * 1024, fresh_seconds: float | None = None,
                 clock: Callable[[], float] = lambda: 0.0):
        self.resource, self.kind, self.namespaced = resource, kind, namespaced
        self.revision = revision
        self.objects: dict[Key, dict] = {}
        self.by_namespace: defaultdict[str, dict[str, dict]] = defaultdict(dict)
        self.label_index: dict[tuple[str, str], set[Key]] = {}
        self.history: deque[Change] = deque()
        self.history_size = history_size
        self.fresh_seconds = fresh_seconds  # also drop changes older than this (kube: 75 s)
        self.clock = clock
        self.floor = revision.value  # a watch from any RV >= floor can be served from history
        self.watchers = WatcherIndex()
        self.listeners: list[Callable[[Change], None]] = []  # in-process observers (trace, model)
        self._hot: deque[Change] = deque()   # the newest changes, still dicts
        self._latest: dict[Key, Change] = {}  # per object, the change that wrote its current state
        self._codec: ColdCodec | None = None

    # -- reads ---------------------------------------------------------------------------------

    def get(self, namespace: str, name: str) -> dict | None:
        return self.objects.get((namespace, name))

    def __len__(self) -> int:
        return len(self.objects)

    def candidates(self, namespace: str | None, equalities: dict[str, str]) -> Iterable[dict]:
        """Objects that may match: narrowed by namespace and the smallest label-index bucket."""
        if equalities:
            buckets = [self.label_index.get(item, ()) for item in equalities.items()]
            smallest = min(buckets, key=len)
            found = (self.objects[key] for key in smallest)
            return found if namespace is None else (o for o in found if o["metadata"].get("namespace") == namespace)
        if namespace is None:
            return self.objects.values()
        return self.by_namespace.get(namespace, {}).values()

    def state_at(self, rv: int) -> dict[Key, dict]:
        """All objects as they were at revision ``rv`` (rv >= floor), undoing later changes."""
        state = dict(self.objects)
        for change in reversed(self.history):
            if change.rv <= rv:
                break
            key = key_of(change.obj)
            if change.prev is None:
                state.pop(key, None)
            else:
                state[key] = change.prev
        return state

    def changes_after(self, rv: int) -> Iterator[Change]:
        """Changes newer than ``rv`` still held in the window, oldest first."""
        if not self.history or self.history[-1].rv <= rv:
            return iter(())
        return (c for c in self.history if c.rv > rv)

    # -- writes --------------------------------------------------------------------------------

    def create(self, obj: dict) -> dict:
        rv = self.revision.next()
        obj = with_rv(obj, rv)
        self._put(key_of(obj), obj, None)
        self._record(Change(rv, ADDED, obj, None, self.clock()))
        return obj

    def replace(self, obj: dict) -> dict:
        """Store a new state of an existing object (the caller checked it exists)."""
        key = key_of(obj)
        prev = self.objects[key]
        rv = self.revision.next()
        obj = with_rv(obj, rv)
        self._put(key, obj, prev)
        self._record(Change(rv, MODIFIED, obj, prev, self.clock()))
        return obj

    def update(self, namespace: str, name: str, mutate: Callable[[dict], dict]) -> dict | None:
        """Apply ``mutate`` (which returns a new dict) to the current object, if it still exists."""
        current = self.objects.get((namespace, name))
        if current is None:
            return None
        new = mutate(current)
        return current if new is current else self.replace(new)

    def remove(self, namespace: str, name: str, last: dict | None = None) -> dict:
        """Delete an object; ``last`` is the final state to report (defaults to the stored one)."""
        key = (namespace, name)
        prev = self.objects[key]
        rv = self.revision.next()
        final = with_rv(last or prev, rv)
        self._drop(key, prev)
        self._record(Change(rv, DELETED, final, prev, self.clock()))
        return final

    def compact(self, keep: int = 0) -> None:
        """Forget all but the newest ``keep`` changes, as a watch-cache resize or etcd compaction."""
        while len(self.history) > keep:
            self._evict()
        if keep == 0:
            self.floor = self.revision.value

    def _evict(self) -> None:
        """Drop the oldest change from the window. It keeps no link to the change before it: a
        change still in the window may need its previous state, one out of it does not."""
        change = self.history.popleft()
        self.floor, change._before = change.rv, None

    def _put(self, key: Key, obj: dict, prev: dict | None) -> None:
        self.objects[key] = obj
        self.by_namespace[key[0]][key[1]] = obj
        old, new = labels_of(prev), labels_of(obj)
        if new is old or new == old:  # most writes leave the labels alone: so does the index
            return
        self._unindex(key, old)
        for item in new.items():
            self.label_index.setdefault(item, set()).add(key)

    def _drop(self, key: Key, prev: dict) -> None:
        del self.objects[key]
        del self.by_namespace[key[0]][key[1]]
        self._unindex(key, labels_of(prev))

    def _unindex(self, key: Key, labels: dict) -> None:
        for item in labels.items():
            bucket = self.label_index.get(item)
            if bucket is not None:
                bucket.discard(key)
                if not bucket:
                    del self.label_index[item]

    def _record(self, change: Change) -> None:
        key = key_of(change._obj)
        if change._prev is not None:   # every write of objects[key] is recorded: this wrote _prev
            change._before = self._latest.get(key)
        if change.type == DELETED:
            self._latest.pop(key, None)
        else:
            self._latest[key] = change
        self.history.append(change)
        if len(self.history) > self.history_size:
            self._evict()
        elif self.fresh_seconds is not None:
            stale = change.at - self.fresh_seconds
            while len(self.history) > MIN_HISTORY and self.history[0].at < stale:
                self._evict()
        for watcher in self.watchers.interested(change):
            watcher.offer(change)
        change._chunk = None  # a watcher resuming from history encodes it again: keep the window small
        if self.listeners:
            self.revision.notify(self.listeners, change)
        self._cool(change)

    def _cool(self, change: Change) -> None:
        """Keep the newest HOT_CHANGES changes as dicts; freeze the one that falls out of them."""
        self._hot.append(change)
        if len(self._hot) <= HOT_CHANGES:
            return
        cold = self._hot.popleft()
        if cold.rv > self.floor:   # still in the window (one already dropped needs nothing)
            if self._codec is None:
                self._codec = ColdCodec.for_object(cold.obj)
            cold.freeze(self._codec)


class WatcherIndex:
    """Watchers bucketed so a change reaches only those whose namespace and labels can match."""

    def __init__(self):
        self._by_label: dict[tuple[str, str, str | None], set] = {}
        self._unindexed: dict[str | None, set] = {}
        self._label_keys: Counter[str] = Counter()  # label keys some watcher is indexed by
        self.count = 0

    def add(self, watcher) -> None:
        self._bucket(watcher).add(watcher)
        self.count += 1
        if watcher.index_label is not None:
            self._label_keys[watcher.index_label[0]] += 1

    def discard(self, watcher) -> None:
        bucket = self._bucket(watcher)
        if watcher in bucket:
            bucket.remove(watcher)
            self.count -= 1
            if watcher.index_label is not None:
                key = watcher.index_label[0]
                self._label_keys[key] -= 1
                if not self._label_keys[key]:
                    del self._label_keys[key]

    def all(self) -> list:
        found = [w for bucket in (*self._unindexed.values(), *self._by_label.values()) for w in bucket]
        return sorted(found, key=lambda w: w.id)

    def _bucket(self, watcher) -> set:
        if watcher.index_label is None:
            return self._unindexed.setdefault(watcher.namespace, set())
        key = (*watcher.index_label, watcher.namespace)
        return self._by_label.setdefault(key, set())

    def interested(self, change: Change) -> list:
        if not self.count:
            return []
        namespace = change.obj["metadata"].get("namespace", "")
        found = [*self._unindexed.get(None, ()), *self._unindexed.get(namespace, ())]
        if self._label_keys:  # look up only the label keys watchers are indexed by
            now, before = labels_of(change.obj), labels_of(change.prev)
            for key in self._label_keys:
                current, was = now.get(key), before.get(key)
                for value in (current,) if current == was else (current, was):
                    if value is not None:
                        found.extend(self._by_label.get((key, value, None), ()))
                        found.extend(self._by_label.get((key, value, namespace), ()))
        # a stable order keeps fan-out (and so the trace) deterministic
        return sorted(found, key=lambda w: w.id) if len(found) > 1 else found
