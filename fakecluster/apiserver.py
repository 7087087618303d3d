"""The simulated kube-apiserver: routing, list/watch/get/create/replace/patch/delete semantics.

``ApiServer.handle`` takes one parsed request and returns a ``Reply`` (status, headers, body)
or a ``WatchReply`` (a streaming body). It may block in virtual time (a watch or an exact list
at a resourceVersion the server has not reached yet waits up to 3 s, as the watch cache does).
Every failure is an ``ApiError`` carrying the Status Kubernetes would send; nothing else
escapes, and a rejected request leaves the store unchanged.
"""

from __future__ import annotations

import base64
import binascii
import json
import random
from dataclasses import dataclass, field
from typing import Callable
from urllib.parse import parse_qsl

from . import status as errors
from .kernel import Kernel
from .patch import SUPPORTED_PATCH_TYPES, PatchError, apply_patch
from .selectors import SelectorError, parse_label_selector
from .status import ApiError
from .store import Change, Key, ResourceStore, Revision, key_of
from .strategies import NamespaceStrategy, PodStrategy, Strategy
from .stream import Stream
from .watch import Watcher

MAX_BODY_BYTES = 3 * 1024 * 1024          # kube-apiserver's MaxRequestBodyBytes
TOO_NEW_RV_WAIT = 3.0                      # the watch cache's blockTimeout
CONTINUE_TTL = 300.0                       # continue tokens outlive etcd compaction by ~5 min
GENERATE_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes | None = None

    @classmethod
    def from_url(cls, method: str, url: str, headers: dict | None = None, body: bytes | None = None):
        path, _, query = url.partition("?")
        if "://" in path:
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        return cls(method.upper(), path, dict(parse_qsl(query, keep_blank_values=True)),
                   {k.lower(): v for k, v in (headers or {}).items()}, body)


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@dataclass
class WatchReply:
    stream: Stream
    watcher: Watcher


@dataclass
class Route:
    store: ResourceStore
    strategy: Strategy
    namespace: str | None
    name: str | None
    subresource: str | None


@dataclass
class ServerOptions:
    """Fidelity knobs where Kubernetes versions differ or the reference is unverified."""

    watch_cache_size: int = 100 * 1024
    bookmark_interval: float = 60.0
    min_request_timeout: float = 1800.0
    deleted_event_has_deletion_timestamp: bool = True
    continue_ttl: float = CONTINUE_TTL


class ApiServer:
    def __init__(self, kernel: Kernel, rng: random.Random, utcnow: Callable[..., str],
                 options: ServerOptions | None = None):
        self.kernel, self.rng, self.utcnow = kernel, rng, utcnow
        self.options = options or ServerOptions()
        self.revision = Revision()
        self.strategies: dict[str, Strategy] = {
            "pods": PodStrategy(),
            "namespaces": NamespaceStrategy("namespaces", "Namespace", False),
            "nodes": Strategy("nodes", "Node", False),
            "events": Strategy("events", "Event", True),
        }
        self.stores = {name: ResourceStore(name, s.kind, s.namespaced, self.revision,
                                           self.options.watch_cache_size)
                       for name, s in self.strategies.items()}
        self.compacted_rv = 0
        self._rv_waiters: list[tuple[int, object]] = []
        for store in self.stores.values():
            store.listeners.append(self._release_rv_waiters)

    @property
    def pods(self) -> ResourceStore:
        return self.stores["pods"]

    # -- entry point ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply | WatchReply:
        try:
            return self._dispatch(request)
        except ApiError as error:
            return error_reply(error)
        except Exception as exc:  # a bug here must still answer like a server, never a traceback
            return error_reply(errors.internal_error(f"{type(exc).__name__}: {exc}"))

    def _dispatch(self, request: Request) -> Reply | WatchReply:
        if request.body is not None and len(request.body) > MAX_BODY_BYTES:
            raise errors.entity_too_large(MAX_BODY_BYTES)
        if request.path in ("/version", "/version/"):
            return json_reply(200, VERSION)
        route = self.route(request.path)
        method, item = request.method, route.name is not None
        if route.subresource not in (None, "status"):
            raise errors.unknown_resource()
        handlers = {
            ("GET", False): self._list_or_watch, ("POST", False): self._create,
            ("GET", True): self._get, ("PUT", True): self._replace, ("PATCH", True): self._patch,
            ("DELETE", True): self._delete,
        }
        handler = handlers.get((method, item))
        if handler is None or (route.subresource and method not in ("GET", "PUT", "PATCH")):
            raise errors.method_not_allowed(method)
        return handler(route, request)

    def route(self, path: str) -> Route:
        parts = [p for p in path.split("/") if p]
        if parts[:2] != ["api", "v1"]:
            raise errors.unknown_resource()
        parts = parts[2:]
        namespace = None
        if len(parts) >= 3 and parts[0] == "namespaces":  # else: the namespaces resource itself
            namespace, parts = parts[1], parts[2:]
        if not parts or parts[0] not in self.stores or len(parts) > 3:
            raise errors.unknown_resource()
        strategy = self.strategies[parts[0]]
        if namespace is not None and not strategy.namespaced:
            raise errors.unknown_resource()
        name = parts[1] if len(parts) > 1 else None
        subresource = parts[2] if len(parts) > 2 else None
        return Route(self.stores[parts[0]], strategy, namespace, name, subresource)

    # -- reads ---------------------------------------------------------------------------------

    def _get(self, route: Route, request: Request) -> Reply:
        return json_reply(200, self._existing(route))

    def _existing(self, route: Route) -> dict:
        obj = route.store.get(route.namespace or "", route.name)
        if obj is None:
            raise errors.not_found(route.store.resource, route.name)
        return obj

    def _selectors(self, route: Route, query: dict):
        try:
            return (parse_label_selector(query.get("labelSelector")),
                    route.strategy.field_selector(query.get("fieldSelector")))
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from None

    def _list_or_watch(self, route: Route, request: Request) -> Reply | WatchReply:
        if request.query.get("watch") in ("1", "true", "True"):
            return self._watch(route, request)
        return self._list(route, request.query)

    def _list(self, route: Route, query: dict) -> Reply:
        labels, fields = self._selectors(route, query)
        rv, match = query.get("resourceVersion"), query.get("resourceVersionMatch")
        limit = parse_int(query.get("limit"), "limit") or 0
        token = query.get("continue")
        store = route.store
        if match and not rv:
            raise errors.bad_request("resourceVersionMatch: Forbidden: resourceVersionMatch is "
                                     "forbidden unless resourceVersion is provided")
        if token:
            if rv:
                raise errors.bad_request("specifying resource version is not allowed when using continue")
            at, start = self._decode_continue(token, store)
        else:
            start = None
            at = self._list_revision(store, rv, match, limit)
        state = store.objects if at == self.revision.value else store.state_at(at)
        namespace = route.namespace
        if at == self.revision.value and not token:
            source = store.candidates(namespace, labels.equalities())
        else:
            source = (o for o in state.values() if namespace is None or o["metadata"].get("namespace") == namespace)
        items = [o for o in source if labels.matches(o["metadata"].get("labels") or {}) and fields.matches(o)]
        items.sort(key=key_of)
        meta: dict = {"resourceVersion": str(at)}
        if start is not None:
            items = [o for o in items if key_of(o) > start]
        if limit and len(items) > limit:
            remaining = len(items) - limit
            items = items[:limit]
            meta["continue"] = encode_continue(at, key_of(items[-1]), self.kernel.env.now)
            if labels.is_empty and fields.is_empty:
                meta["remainingItemCount"] = remaining
        body = {"kind": f"{store.kind}List", "apiVersion": "v1", "metadata": meta, "items": items}
        return json_reply(200, body)

    def _list_revision(self, store: ResourceStore, rv: str | None, match: str | None, limit: int) -> int:
        """The revision a list is served at, per the resourceVersion/resourceVersionMatch table."""
        current = self.revision.value
        if rv is None or rv == "":
            return current
        requested = parse_rv(rv)
        if match not in (None, "", "Exact", "NotOlderThan"):
            raise errors.bad_request(f'resourceVersionMatch: Unsupported value: "{match}": supported '
                                     'values: "Exact", "NotOlderThan"')
        if match == "Exact" and requested == 0:
            raise errors.bad_request('resourceVersionMatch: Forbidden: resourceVersionMatch "exact" '
                                     'is forbidden for resourceVersion "0"')
        if requested == 0:
            return current
        self._wait_for_revision(requested)
        exact = match == "Exact" or (not match and limit)
        if not exact:
            return self.revision.value
        if requested < max(store.floor, self.compacted_rv):
            raise errors.expired("The resourceVersion for the provided list is too old.")
        return requested

    def _decode_continue(self, token: str, store: ResourceStore) -> tuple[int, Key]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=="))
            at, start, issued = int(data["rv"]), tuple(data["start"]), float(data["t"])
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise errors.bad_request("continue key is not valid: illegal base64 data or malformed token") from None
        too_old = at < max(store.floor, self.compacted_rv)
        if too_old or self.kernel.env.now - issued > self.options.continue_ttl:
            fresh = encode_continue(self.revision.value, start, self.kernel.env.now)
            raise errors.expired(CONTINUE_EXPIRED, metadata={"continue": fresh})
        return at, start

    def _wait_for_revision(self, requested: int) -> None:
        if requested <= self.revision.value:
            return
        arrived = self.kernel.env.event()
        self._rv_waiters.append((requested, arrived))
        self.kernel.wait(arrived, TOO_NEW_RV_WAIT, f"resourceVersion {requested}")
        if requested > self.revision.value:
            raise errors.too_large_resource_version(requested, self.revision.value)

    def _release_rv_waiters(self, change: Change) -> None:
        if self._rv_waiters:
            ready = [w for w in self._rv_waiters if w[0] <= change.rv]
            for waiter in ready:
                self._rv_waiters.remove(waiter)
                if not waiter[1].triggered:
                    waiter[1].succeed()

    # -- watch ---------------------------------------------------------------------------------

    def _watch(self, route: Route, request: Request) -> WatchReply:
        query = request.query
        labels, fields = self._selectors(route, query)
        rv = query.get("resourceVersion") or None
        requested = parse_rv(rv) if rv else None
        timeout = parse_int(query.get("timeoutSeconds"), "timeoutSeconds")
        initial = query.get("sendInitialEvents") in ("true", "1")
        if initial and query.get("resourceVersionMatch") != "NotOlderThan":
            raise errors.invalid("ListOptions", "", [{
                "reason": "FieldValueForbidden", "field": "sendInitialEvents",
                "message": "Forbidden: sendInitialEvents is forbidden for watch unless "
                           "resourceVersionMatch is set to NotOlderThan"}])
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        store = route.store
        stream = Stream(self.kernel, f"watch {request.path}")
        stream.write_raw(WATCH_HEAD)
        watcher = Watcher(store, stream, route.namespace, labels, fields, bookmarks)
        if requested is not None and requested > self.revision.value:
            try:
                self._wait_for_revision(requested)
            except ApiError as too_new:
                watcher.send_error(too_new)
                return WatchReply(stream, watcher)
        if requested is None or requested == 0 or initial:
            self._send_initial(watcher, store, route.namespace, labels.equalities())
            if initial and bookmarks:
                watcher.send_bookmark(self.revision.value, initial_events_end=True)
        elif requested < store.floor:
            watcher.send_error(errors.expired(f"too old resource version: {requested} ({store.floor})"))
            return WatchReply(stream, watcher)
        else:
            for change in store.changes_after(requested):
                watcher.offer(change)
        store.watchers.add(watcher)
        self._schedule_watch_end(watcher, timeout)
        return WatchReply(stream, watcher)

    def _send_initial(self, watcher: Watcher, store: ResourceStore, namespace, equalities) -> None:
        for obj in sorted(store.candidates(namespace, equalities), key=key_of):
            if watcher.matches(obj):
                watcher.send_added(obj)

    def _schedule_watch_end(self, watcher: Watcher, timeout: int | None) -> None:
        env = self.kernel.env
        if timeout is None or timeout <= 0:
            timeout = self.options.min_request_timeout * (1 + self.rng.random())
        env.timeout(timeout).callbacks.append(lambda _: watcher.open and watcher.finish())
        if watcher.bookmarks:
            self._schedule_bookmark(watcher, env.now + timeout)

    def _schedule_bookmark(self, watcher: Watcher, deadline: float) -> None:
        env = self.kernel.env
        at = min(env.now + self.options.bookmark_interval, deadline - 2)
        if at <= env.now:
            return

        def fire(_):
            if watcher.open:
                watcher.send_bookmark(self.revision.value)
                self._schedule_bookmark(watcher, deadline)

        env.timeout(at - env.now).callbacks.append(fire)

    # -- writes --------------------------------------------------------------------------------

    def _create(self, route: Route, request: Request) -> Reply:
        obj = self._decode_body(request, route.strategy)
        store, strategy = route.store, route.strategy
        meta = dict(obj.get("metadata") or {})
        namespace = self._target_namespace(route, meta)
        meta.pop("resourceVersion", None)
        if not meta.get("name") and meta.get("generateName"):
            meta["name"] = self._generate_name(store, namespace, meta["generateName"])
        name = meta.get("name") or ""
        causes = strategy.validate_name(name) if name else [{
            "reason": "FieldValueRequired", "field": "metadata.name",
            "message": "Required value: name or generateName is required"}]
        meta.update(uid=self._uid(), creationTimestamp=self.utcnow())
        for transient in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(transient, None)
        if strategy.namespaced:
            meta["namespace"] = namespace
        obj = strategy.prepare_create({**obj, "kind": strategy.kind, "apiVersion": "v1", "metadata": meta})
        causes += strategy.validate(obj)
        if causes:
            raise errors.invalid(strategy.kind, name, causes)
        if store.get(namespace or "", name) is not None:
            raise errors.already_exists(store.resource, name)
        return json_reply(201, store.create(obj))

    def _target_namespace(self, route: Route, meta: dict) -> str | None:
        if not route.strategy.namespaced:
            return None
        body_ns = meta.get("namespace")
        if body_ns and body_ns != route.namespace:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        if self.stores["namespaces"].get("", route.namespace) is None:
            raise errors.not_found("namespaces", route.namespace)
        return route.namespace

    def _generate_name(self, store: ResourceStore, namespace: str | None, prefix: str) -> str:
        for _ in range(8):  # kube-apiserver retries a generateName collision up to 7 times
            name = prefix[:58] + "".join(self.rng.choice(GENERATE_NAME_CHARS) for _ in range(5))
            if store.get(namespace or "", name) is None:
                return name
        raise errors.already_exists(store.resource, name)

    def _uid(self) -> str:
        hexed = f"{self.rng.getrandbits(128):032x}"
        return f"{hexed[:8]}-{hexed[8:12]}-4{hexed[13:16]}-a{hexed[17:20]}-{hexed[20:]}"

    def _replace(self, route: Route, request: Request) -> Reply:
        current = self._existing(route)
        new = self._decode_body(request, route.strategy)
        rv = (new.get("metadata") or {}).get("resourceVersion")
        if not rv:
            raise errors.invalid(route.strategy.kind, route.name, [{
                "reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                "message": "Invalid value: 0x0: must be specified for an update"}])
        return self._update(route, current, new)

    def _patch(self, route: Route, request: Request) -> Reply:
        current = self._existing(route)
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type not in SUPPORTED_PATCH_TYPES:
            raise errors.unsupported_media_type(content_type, SUPPORTED_PATCH_TYPES)
        try:
            new = apply_patch(current, request.body or b"", content_type)
        except PatchError as exc:
            raise ApiError(exc.code, exc.reason, exc.message) from None
        return self._update(route, current, new)

    def _update(self, route: Route, current: dict, new: dict) -> Reply:
        strategy, meta = route.strategy, dict(new.get("metadata") or {})
        wanted_rv = meta.get("resourceVersion")
        if wanted_rv and wanted_rv != current["metadata"]["resourceVersion"]:
            raise errors.conflict(route.store.resource, route.name, errors.STALE_OBJECT)
        for fixed in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp",
                      "deletionGracePeriodSeconds", "resourceVersion", "generateName"):
            if fixed in current["metadata"]:
                meta[fixed] = current["metadata"][fixed]
            else:
                meta.pop(fixed, None)
        new = strategy.prepare_update({**new, "kind": strategy.kind, "apiVersion": "v1",
                                       "metadata": meta}, current, route.subresource)
        causes = strategy.validate_update(new, current)
        if causes:
            raise errors.invalid(strategy.kind, route.name, causes)
        if new == current:  # a no-op write keeps the resourceVersion, like kube-apiserver
            return json_reply(200, current)
        return json_reply(200, route.store.replace(new))

    def _delete(self, route: Route, request: Request) -> Reply:
        current = self._existing(route)
        options = self._delete_options(request)
        preconditions = options.get("preconditions") or {}
        for field_name, ours in (("uid", current["metadata"]["uid"]),
                                 ("resourceVersion", current["metadata"]["resourceVersion"])):
            theirs = preconditions.get(field_name)
            if theirs and theirs != ours:
                label = "UID" if field_name == "uid" else "ResourceVersion"
                raise errors.conflict(route.store.resource, route.name,
                                      f"Precondition failed: {label} in precondition: {theirs}, "
                                      f"{label} in object meta: {ours}")
        return json_reply(200, self.delete_object(route.store, current, options.get("gracePeriodSeconds")))

    def delete_object(self, store: ResourceStore, current: dict, requested_grace: int | None) -> dict:
        """Delete now (grace 0) or mark for graceful deletion; returns the object as answered."""
        strategy = self.strategies[store.resource]
        grace = strategy.grace_period(current, requested_grace)
        meta = current["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        if grace == 0 and not meta.get("finalizers"):
            last = current
            if self.options.deleted_event_has_deletion_timestamp and "deletionTimestamp" not in meta:
                last = {**current, "metadata": {**meta, "deletionTimestamp": self.utcnow(),
                                                "deletionGracePeriodSeconds": 0}}
            return store.remove(namespace, name, last)
        pending = meta.get("deletionGracePeriodSeconds")
        if pending is not None and pending <= grace:
            return current  # already terminating at least as fast
        deadline = self.utcnow(offset=grace)
        return store.replace({**current, "metadata": {**meta, "deletionTimestamp": deadline,
                                                       "deletionGracePeriodSeconds": grace}})

    def _delete_options(self, request: Request) -> dict:
        options: dict = {}
        if request.body and request.body.strip():
            options = self._json(request.body)
            if not isinstance(options, dict):
                raise errors.bad_request("DeleteOptions must be a JSON object")
        if "gracePeriodSeconds" in request.query:
            options["gracePeriodSeconds"] = parse_int(request.query["gracePeriodSeconds"], "gracePeriodSeconds")
        return options

    # -- bodies --------------------------------------------------------------------------------

    def _decode_body(self, request: Request, strategy: Strategy) -> dict:
        obj = self._json(request.body)
        if not isinstance(obj, dict):
            raise errors.bad_request(f"the body of the request was not a {strategy.kind} object")
        kind = obj.get("kind")
        if kind not in (None, "", strategy.kind):
            raise errors.bad_request(f'{kind} in version "{obj.get("apiVersion", "v1")}" cannot be '
                                     f'handled as a {strategy.kind}: the object kind does not match')
        if not isinstance(obj.get("metadata", {}), dict):
            raise errors.bad_request("metadata: the object metadata must be a JSON object")
        return obj

    @staticmethod
    def _json(body: bytes | None):
        if not body:
            raise errors.bad_request("the body of the request was empty")
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise errors.bad_request(f"couldn't get version/kind; json parse error: {exc}") from None


VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-kubesim", "platform": "linux/amd64"}

WATCH_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.")


def json_reply(status: int, obj: dict) -> Reply:
    return Reply(status, json.dumps(obj, separators=(",", ":")).encode())


def error_reply(error: ApiError) -> Reply:
    return Reply(error.code, error.body(), {"Content-Type": error.content_type(), **error.headers})


def encode_continue(rv: int, start: Key, issued: float) -> str:
    data = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(start), "t": issued})
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")


def parse_rv(value: str) -> int:
    try:
        rv = int(value)
        if rv < 0:
            raise ValueError
        return rv
    except ValueError:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{value}": strconv.ParseUint: '
                                 f'parsing "{value}": invalid syntax') from None


def parse_int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f'{name}: Invalid value: "{value}": must be an integer') from None
