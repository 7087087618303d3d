"""The simulated kube-apiserver: routing, list/watch/get/create/replace/patch/delete semantics.

``ApiServer.handle`` takes one parsed request and returns a ``Reply`` (status, headers, body)
or a ``WatchReply`` (a streaming body). It may block in virtual time (a watch or an exact list
at a resourceVersion the server has not reached yet waits up to 3 s, as the watch cache does).
Every failure is an ``ApiError`` carrying the Status Kubernetes would send; nothing else
escapes, and a rejected request leaves the store unchanged.

Requests are checked in kube-apiserver's order: route and verb, body size, content type, body
decoding into the typed object (400, with Go's decoder messages), request/object identity (400),
admission (the namespace must exist: 404), validation (422), then storage (404, 409, 410, 504).
"""

from __future__ import annotations

import base64
import binascii
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Callable
from urllib.parse import parse_qsl, unquote

from ..kernel.engine import Kernel
from . import access
from . import status as errors
from .decoding import decode_json, decode_yaml, find_kind_error, go_json_type, summarize
from .patch import SUPPORTED_PATCH_TYPES, PatchError, apply_patch
from .logs import PLAIN_TEXT, UNSERVED, LogSource, pod_log, unserved
from .metadata_only import as_metadata, wants_metadata
from .schema import kind_schema, unknown_fields, without_fields
from .query import EXACT, META_GROUP, parse_bool, parse_int, parse_rv, parse_stored_rv, validate_list_options
from .selectors import (EVENT_FIELDS, NAMESPACE_FIELDS, NODE_FIELDS, SERVICE_FIELDS, SelectorError,
                        parse_label_selector)
from .status import ApiError
from .store import Change, Key, ResourceStore, Revision, key_of
from .strategies import (DELETE_OPTIONS, IMMORTAL_NAMESPACES, DecodeError, NamespaceStrategy, NodeStrategy,
                         PodStrategy, Strategy, decode_typed)
from .stream import Stream
from .validation import go_quote
from .watch import Watcher
from .wire import dumps

MAX_BODY_BYTES = 3 * 1024 * 1024          # kube-apiserver's MaxRequestBodyBytes
FIELD_VALIDATION = ("Ignore", "Strict", "Warn")  # the fieldValidation directives (sorted, as Go lists them)
TOO_NEW_RV_WAIT = 3.0                      # the watch cache's blockTimeout
CONTINUE_TTL = 300.0                       # continue tokens outlive etcd compaction by ~5 min
GENERATE_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
BODY_MEDIA_TYPES = ("application/json", "application/yaml")  # what create and update decode


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes | None = None
    parts: list[str] = field(init=False, repr=False)  # the path's segments, for gateway and router
    warnings: list[str] = field(default_factory=list, repr=False)  # sent back as Warning headers

    @classmethod
    def from_url(cls, method: str, url: str, headers: dict | None = None, body: bytes | None = None):
        path, _, query = url.partition("?")
        if "://" in path:
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        if "%" in path:
            path = unquote(path)
        return cls(method.upper(), path, dict(parse_qsl(query, keep_blank_values=True)) if query else {},
                   {k.lower(): v for k, v in (headers or {}).items()}, body)

    def __post_init__(self):
        self.parts = list(filter(None, self.path.split("/")))


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@dataclass
class WatchReply:
    """A streaming answer: a watch, or a followed log (its ``watcher`` is then the LogFollower)."""
    stream: Stream
    watcher: Watcher
    content_type: str = "application/json"


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
    watch_cache_seconds: float | None = None   # Kubernetes also drops events older than 75 s
    bookmark_interval: float = 60.0
    min_request_timeout: float = 1800.0
    deleted_event_has_deletion_timestamp: bool = True
    continue_ttl: float = CONTINUE_TTL


class ApiServer:
    def __init__(self, kernel: Kernel, rng: random.Random, utcnow: Callable[..., str],
                 options: ServerOptions | None = None):
        self.kernel, self.rng, self.utcnow = kernel, rng, utcnow
        self.options = options or ServerOptions()
        self.address = IN_CLUSTER_ADDRESS   # the front door that serves it names its own in /api
        self.revision = Revision()
        # Watches started, by where they start: "now" (no resourceVersion), "0" (any: every
        # object replayed as ADDED) or "exact"; a client resuming from "0" shows up here.
        self.watch_starts: Counter = Counter()
        self.strategies: dict[str, Strategy] = {
            "pods": PodStrategy(),
            "namespaces": NamespaceStrategy("namespaces", "Namespace", False, NAMESPACE_FIELDS),
            "nodes": NodeStrategy("nodes", "Node", False, NODE_FIELDS),
            "events": Strategy("events", "Event", True, EVENT_FIELDS),
            # stored and listed only (no endpoints, no proxy): kubectl cluster-info lists them
            "services": Strategy("services", "Service", True, SERVICE_FIELDS),
        }
        self.stores = {name: ResourceStore(name, s.kind, s.namespaced, self.revision,
                                           self.options.watch_cache_size, self.options.watch_cache_seconds,
                                           clock=lambda: kernel.env.now)
                       for name, s in self.strategies.items()}
        self.compacted_rv = 0
        self.log_source: LogSource | None = None   # the cluster model's container logs (pods/log)
        self.before_events: Callable[[], None] | None = None   # writes the model's pending Events
        self._rv_waiters: list[tuple[int, object]] = []  # while any, every store's first listener releases them

    @property
    def pods(self) -> ResourceStore:
        return self.stores["pods"]

    # -- entry point ---------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply | WatchReply:
        try:
            reply = self._dispatch(request)
            if request.method == "GET" and isinstance(reply, Reply) and reply.status == 200:
                reply = metadata_only(reply, request.headers.get("accept", ""))
            if request.warnings:
                reply.headers["Warning"] = warning_header(request.warnings)
            return reply
        except ApiError as error:
            return error_reply(error)
        except Exception as exc:  # a bug here must still answer like a server, never a traceback
            return error_reply(errors.internal_error(f"{type(exc).__name__}: {exc}"))

    def _dispatch(self, request: Request) -> Reply | WatchReply:
        if request.path in ("/version", "/version/"):
            return json_reply(200, VERSION)
        if request.method == "GET" and request.path.rstrip("/") in DISCOVERY_PATHS:
            return json_reply(200, self.discovery(request.path.rstrip("/")))
        if request.parts[:3] == ["apis", "authorization.k8s.io", "v1"] and len(request.parts) > 3:
            return json_reply(201, access.review(request.method, request.parts, request.body))
        route = self.route(request.parts)
        method = request.method
        if self.before_events is not None and route.store.resource == "events":
            self.before_events()
        if route.subresource not in (None, "status"):
            return self._pod_subresource(route, request)
        handler = _HANDLERS.get((method, route.name is not None))
        # deletecollection is served within one namespace only (not across all, not cluster-wide)
        wide_delete = handler is ApiServer._delete_collection and route.namespace is None
        if handler is None or wide_delete or \
                (route.subresource and method not in ("GET", "PUT", "PATCH")):
            raise errors.method_not_allowed(method)
        if request.body is not None and len(request.body) > MAX_BODY_BYTES:
            raise errors.entity_too_large(MAX_BODY_BYTES)
        return handler(self, route, request)

    def discovery(self, path: str) -> dict:
        """/api, /apis, /api/v1 and the authorization group's documents, as clients (kubectl, the
        DynamicClient) read them, in-process and over HTTP alike."""
        from . import access
        from .discovery import api_group, api_group_list, api_versions, core_resources
        if path == "/api":
            return api_versions(self.address)
        if path == "/apis/authorization.k8s.io":
            return api_group("authorization.k8s.io")
        if path == f"/apis/{access.GROUP_VERSION}":
            return access.resources()
        return api_group_list() if path == "/apis" else core_resources(self)

    def route(self, parts: list[str]) -> Route:
        """The store, namespace, name and subresource a request's path segments address."""
        match parts:
            case ["api", "v1", "namespaces", namespace, resource, *rest]:
                pass
            case ["api", "v1", resource, *rest]:  # cluster-wide, or the namespaces resource itself
                namespace = None
            case _:
                raise errors.unknown_resource()
        strategy = self.strategies.get(resource)
        if strategy is None or len(rest) > 2 or (namespace is not None and not strategy.namespaced):
            raise errors.unknown_resource()
        name = rest[0] if rest else None
        subresource = rest[1] if len(rest) > 1 else None
        return Route(self.stores[resource], strategy, namespace, name, subresource)

    # -- subresources beyond status -------------------------------------------------------------

    def _pod_subresource(self, route: Route, request: Request) -> Reply | WatchReply:
        """pods/log from the model's log source; exec, attach, portforward: a Status saying no."""
        subresource = route.subresource
        if route.store.resource != "pods" or (subresource != "log" and subresource not in UNSERVED):
            raise errors.unknown_resource()
        if subresource == "log" and request.method != "GET":
            raise errors.method_not_allowed(request.method)
        pod = self._existing(route)
        if subresource != "log":
            raise unserved(subresource, route.name)
        if self.log_source is None:
            raise errors.unknown_resource()
        now = datetime.fromisoformat(self.utcnow().replace("Z", "+00:00"))
        body, follower = pod_log(pod, request.query, self.log_source, now, self.kernel, self.pods)
        if follower is None:
            return Reply(200, body, dict(PLAIN_TEXT))
        return WatchReply(body, follower, "text/plain")

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
        if parse_bool(request.query, "watch"):
            return self._watch(route, request)
        return self._list(route, request.query)

    def _list(self, route: Route, query: dict) -> Reply:
        labels, fields = self._selectors(route, query)
        rv, match = query.get("resourceVersion") or "", query.get("resourceVersionMatch") or ""
        token = query.get("continue") or ""
        validate_list_options(rv, match, token, parse_bool(query, "sendInitialEvents"), watch=False)
        limit = max(parse_int(query.get("limit"), "limit") or 0, 0)  # limit <= 0: no paging
        store = route.store
        if token:
            if rv not in ("", "0"):
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

    def _list_revision(self, store: ResourceStore, rv: str, match: str, limit: int) -> int:
        """The revision a list is served at, per the resourceVersion/resourceVersionMatch table."""
        if not rv:
            return self.revision.value                  # Most Recent
        requested = parse_rv(rv)
        if requested == 0:
            return self.revision.value                  # Any: the freshest is as good as any
        self._wait_for_revision(requested)
        if not (match == EXACT or (not match and limit)):
            return self.revision.value                  # Not older than
        if requested < max(store.floor, self.compacted_rv):
            raise errors.expired("The resourceVersion for the provided list is too old.")
        return requested                                # Exact

    def _decode_continue(self, token: str, store: ResourceStore) -> tuple[int, Key]:
        try:
            data = json.loads(base64.urlsafe_b64decode(token.encode() + b"=="))
            at, start, issued = int(data["rv"]), tuple(data["start"]), float(data["t"])
            if at == 0 or len(start) != 2:
                raise ValueError
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise errors.bad_request("invalid continue token: continue key is not valid") from None
        if at < 0:  # the token of an expired continue: go on from the latest revision
            return self.revision.value, start
        too_old = at < max(store.floor, self.compacted_rv)
        if too_old or self.kernel.env.now - issued > self.options.continue_ttl:
            fresh = encode_continue(-1, start, self.kernel.env.now)
            raise errors.expired(CONTINUE_EXPIRED, metadata={"continue": fresh})
        return at, start

    def _wait_for_revision(self, requested: int) -> None:
        if requested <= self.revision.value:
            return
        waiter = (requested, self.kernel.env.event())
        self._add_rv_waiter(waiter)
        if not self.kernel.wait(waiter[1], TOO_NEW_RV_WAIT, f"resourceVersion {requested}"):
            self._remove_rv_waiter(waiter)  # gave up: nobody will release it
        if requested > self.revision.value:
            raise errors.too_large_resource_version(requested, self.revision.value)

    # A waiter is rare, a change is not: the stores call _release_rv_waiters only while one waits.

    def _add_rv_waiter(self, waiter: tuple[int, object]) -> None:
        if not self._rv_waiters:
            for store in self.stores.values():
                store.listeners.insert(0, self._release_rv_waiters)  # first, where it always ran
        self._rv_waiters.append(waiter)

    def _remove_rv_waiter(self, waiter: tuple[int, object]) -> None:
        self._rv_waiters.remove(waiter)
        if not self._rv_waiters:
            for store in self.stores.values():
                store.listeners.remove(self._release_rv_waiters)

    def _release_rv_waiters(self, change: Change) -> None:
        for waiter in [w for w in self._rv_waiters if w[0] <= change.rv]:
            self._remove_rv_waiter(waiter)
            if not waiter[1].triggered:
                waiter[1].succeed()

    # -- watch ---------------------------------------------------------------------------------

    def _watch(self, route: Route, request: Request) -> WatchReply:
        query = request.query
        labels, fields = self._selectors(route, query)
        rv = query.get("resourceVersion") or None
        initial = parse_bool(query, "sendInitialEvents")  # None: not given
        validate_list_options(rv or "", query.get("resourceVersionMatch") or "",
                              query.get("continue") or "", initial, watch=True)
        requested = parse_rv(rv) if rv else None
        self.watch_starts["now" if rv is None else "0" if rv == "0" else "exact"] += 1
        timeout = parse_int(query.get("timeoutSeconds"), "timeoutSeconds")
        bookmarks = bool(parse_bool(query, "allowWatchBookmarks"))
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
        if initial or (initial is None and not requested):
            self._send_initial(watcher, store, route.namespace, labels.equalities())
            if initial and bookmarks:
                watcher.send_bookmark(self.revision.value, initial_events_end=True)
        elif not requested:
            pass  # sendInitialEvents=false from "now": only changes from here on
        elif requested < store.floor:
            watcher.send_error(errors.too_old_resource_version(requested, store.floor))
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
        strategy, store = route.strategy, route.store
        dry_run = self._dry_run(request.query.get("dryRun"), "CreateOptions")
        obj = self._known_fields(request, strategy, self._decode_body(request, strategy), "CreateOptions")
        meta = dict(obj.get("metadata") or {})
        namespace = self._target_namespace(route, meta)
        resource_version = meta.pop("resourceVersion", None)
        generate_name = meta.get("generateName") or None
        if not meta.get("name") and generate_name:
            meta["name"] = self._generate_name(store, namespace, generate_name)
        name = meta.get("name") or ""
        causes = strategy.validate_name(name, generate_name)
        meta.update(uid=self._uid(), creationTimestamp=self.utcnow())
        for transient in ("deletionTimestamp", "deletionGracePeriodSeconds"):
            meta.pop(transient, None)
        if strategy.namespaced:
            meta["namespace"] = namespace
        obj = strategy.prepare_create({**obj, "kind": strategy.kind, "apiVersion": "v1", "metadata": meta})
        causes += strategy.validate(obj)
        if causes:
            raise errors.invalid(strategy.kind, name, causes)
        request.warnings += strategy.warnings(obj)
        if parse_stored_rv(resource_version):  # etcd3 store.Create refuses it, as a plain error
            raise errors.unknown(500, "resourceVersion should not be set on objects to be created")
        if store.get(namespace or "", name) is not None:
            raise errors.already_exists(store.resource, name)
        return json_reply(201, obj if dry_run else store.create(obj))

    def _target_namespace(self, route: Route, meta: dict) -> str | None:
        if not route.strategy.namespaced:
            return None
        body_ns = meta.get("namespace")
        if body_ns and body_ns != route.namespace:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        found = self.stores["namespaces"].get("", route.namespace)
        if found is None:
            raise errors.not_found("namespaces", route.namespace)
        if found["metadata"].get("deletionTimestamp"):
            raise namespace_terminating(route.store.resource, meta, route.namespace)
        return route.namespace

    @staticmethod
    def _check_identity(route: Route, meta: dict) -> None:
        """The object named in the body must be the one named by the URL (checkName)."""
        body_ns = meta.get("namespace")
        if route.strategy.namespaced and body_ns and body_ns != route.namespace:
            raise errors.bad_request("the namespace of the provided object does not match the "
                                     "namespace sent on the request")
        name = meta.get("name") or ""
        if name != route.name:
            raise errors.bad_request(f"the name of the object ({name}) does not match the name "
                                     f"on the URL ({route.name})")

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
        dry_run = self._dry_run(request.query.get("dryRun"), "UpdateOptions")
        new = self._known_fields(request, route.strategy, self._decode_body(request, route.strategy), "UpdateOptions")
        self._check_identity(route, new.get("metadata") or {})
        current = self._existing(route)
        uid, ours = (new.get("metadata") or {}).get("uid"), current["metadata"]["uid"]
        if uid and uid != ours:  # a PUT body's uid is a precondition (rest.DefaultUpdatedObjectInfo)
            raise errors.conflict(route.store.resource, route.name,
                                  f"Precondition failed: UID in precondition: {uid}, UID in object meta: {ours}")
        return self._update(route, current, new, dry_run)

    def _patch(self, route: Route, request: Request) -> Reply:
        content_type = request.headers.get("content-type", "").split(";")[0].strip()
        if content_type not in SUPPORTED_PATCH_TYPES:
            raise errors.unsupported_media_type(content_type, SUPPORTED_PATCH_TYPES)
        dry_run = self._dry_run(request.query.get("dryRun"), "PatchOptions")
        current = self._existing(route)
        try:
            patched = apply_patch(current, request.body or b"", content_type)
        except PatchError as exc:
            raise ApiError(exc.code, exc.reason, exc.message, exc.details) from None
        if not isinstance(patched, dict):  # a JSON Patch can leave any JSON value
            raise errors.invalid("", "", [errors.invalid_cause(
                "patch", compact_json(patched), f"couldn't get version/kind; json parse error: "
                                                 f"{find_kind_error(patched)}")])
        try:
            patched = route.strategy.decode(patched)
        except DecodeError as exc:  # the patched JSON no longer fits the typed object
            raise errors.invalid("", "", [errors.invalid_cause("patch", compact_json(patched), str(exc))]) from None
        patched = self._known_fields(request, route.strategy, patched, "PatchOptions", patch=True)
        self._check_identity(route, patched.get("metadata") or {})
        return self._update(route, current, patched, dry_run)

    def _update(self, route: Route, current: dict, new: dict, dry_run: bool = False) -> Reply:
        strategy, meta = route.strategy, dict(new.get("metadata") or {})
        wanted_rv = meta.get("resourceVersion") or ""
        if not parse_stored_rv(wanted_rv):
            if not strategy.allow_unconditional_update:  # the Kind is the resource here, as upstream
                raise errors.invalid(route.store.resource, route.name, [{
                    "reason": "FieldValueInvalid", "field": "metadata.resourceVersion",
                    "message": "Invalid value: 0x0: must be specified for an update"}])
        elif wanted_rv != current["metadata"]["resourceVersion"]:
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
        if new == current or dry_run:  # a no-op write keeps the resourceVersion, like kube-apiserver
            return json_reply(200, new)
        if finalized(new):  # the last finalizer of an object deleted with grace 0: it goes now
            return json_reply(200, route.store.remove(meta.get("namespace", ""), route.name, new))
        return json_reply(200, route.store.replace(new))

    def _delete(self, route: Route, request: Request) -> Reply:
        if route.store.resource == "namespaces" and route.name in IMMORTAL_NAMESPACES:
            raise errors.forbidden("namespaces", route.name, "this namespace may not be deleted")
        options = self._delete_options(request)
        current = self._existing(route)
        if options.get("preconditions"):
            self._check_preconditions(route, current, options["preconditions"])
        deleted = self.delete_object(route.store, current, options.get("gracePeriodSeconds"),
                                     dry_run=bool(options.get("dryRun")))
        return json_reply(200, deleted)

    @staticmethod
    def _check_preconditions(route: Route, current: dict, preconditions: dict) -> None:
        """The uid and resourceVersion a DELETE expects of the object (409 when they differ)."""
        for field_name, ours in (("uid", current["metadata"]["uid"]),
                                 ("resourceVersion", current["metadata"]["resourceVersion"])):
            theirs = preconditions.get(field_name)
            if theirs and theirs != ours:
                label = "UID" if field_name == "uid" else "ResourceVersion"
                raise errors.conflict(route.store.resource, route.name,
                                      f"Precondition failed: {label} in precondition: {theirs}, "
                                      f"{label} in object meta: {ours}")

    def _delete_collection(self, route: Route, request: Request) -> Reply:
        """DELETE on a namespaced collection: every object the selectors match, one by one."""
        options = self._delete_options(request)
        query = request.query
        validate_list_options(query.get("resourceVersion") or "", query.get("resourceVersionMatch") or "",
                              query.get("continue") or "", parse_bool(query, "sendInitialEvents"), watch=False)
        labels, fields = self._selectors(route, query)
        store = route.store
        matched = sorted((o for o in store.candidates(route.namespace, labels.equalities())
                          if labels.matches(o["metadata"].get("labels") or {}) and fields.matches(o)),
                         key=key_of)
        items = [self.delete_object(store, obj, options.get("gracePeriodSeconds"),
                                    dry_run=bool(options.get("dryRun"))) for obj in matched]
        return json_reply(200, {"kind": f"{store.kind}List", "apiVersion": "v1",
                                "metadata": {"resourceVersion": str(self.revision.value)}, "items": items})

    def delete_object(self, store: ResourceStore, current: dict, requested_grace: int | None,
                      dry_run: bool = False) -> dict:
        """Delete now (grace 0) or mark for graceful deletion; returns the object as answered."""
        strategy = self.strategies[store.resource]
        held = strategy.begin_finalization(current, self.utcnow())
        if held is not None:  # kept until a controller finalizes it (a namespace: Terminating)
            return held if held is current or dry_run else store.replace(held)
        grace = strategy.grace_period(current, requested_grace)
        meta = current["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        if grace == 0 and not meta.get("finalizers"):
            last = current
            if self.options.deleted_event_has_deletion_timestamp and "deletionTimestamp" not in meta:
                last = {**current, "metadata": {**meta, "deletionTimestamp": self.utcnow(),
                                                "deletionGracePeriodSeconds": 0}}
            return last if dry_run else store.remove(namespace, name, last)
        pending = meta.get("deletionGracePeriodSeconds")
        if pending is not None and pending <= grace:
            return current  # already terminating at least as fast
        deadline = self.utcnow(offset=grace)
        marked = {**current, "metadata": {**meta, "deletionTimestamp": deadline,
                                          "deletionGracePeriodSeconds": grace}}
        return marked if dry_run else store.replace(marked)

    def _delete_options(self, request: Request) -> dict:
        """DeleteOptions from the body or, when there is none, from the query (as upstream)."""
        if request.body and request.body.strip():
            raw = decode_json(request.body)  # DeleteOptions decode errors are 400 (kubernetes#132359)
            if not isinstance(raw, dict):
                raise errors.bad_request(f"couldn't get version/kind; json parse error: "
                                         f"{find_kind_error(raw)}")
            try:
                options = decode_typed(DELETE_OPTIONS, raw)
            except DecodeError as exc:
                raise errors.bad_request(str(exc)) from None
        else:
            query, options = request.query, {}
            grace = parse_int(query.get("gracePeriodSeconds"), "gracePeriodSeconds")
            if grace is not None:
                options["gracePeriodSeconds"] = grace
            if query.get("propagationPolicy"):
                options["propagationPolicy"] = query["propagationPolicy"]
            if parse_bool(query, "orphanDependents") is not None:
                options["orphanDependents"] = parse_bool(query, "orphanDependents")
            if "dryRun" in query:
                options["dryRun"] = [query["dryRun"]]
        causes = []
        policy = options.get("propagationPolicy")
        if policy is not None and options.get("orphanDependents") is not None:
            causes.append(errors.invalid_cause("propagationPolicy", policy,
                                               "orphanDependents and deletionPropagation cannot be both set"))
        if policy is not None and policy not in ("Foreground", "Background", "Orphan"):
            causes.append(errors.not_supported_cause("propagationPolicy", policy,
                                                     ["Foreground", "Background", "Orphan", "nil"]))
        if causes:
            raise errors.invalid("DeleteOptions", "", causes, META_GROUP)
        self._dry_run(options.get("dryRun"), "DeleteOptions")
        return options

    @staticmethod
    def _known_fields(request: Request, strategy: Strategy, obj: dict, options_kind: str,
                      patch: bool = False) -> dict:
        """fieldValidation: unknown fields are refused (Strict), dropped with a warning (Warn, the
        default) or dropped (Ignore), as kube-apiserver's strict decoding does."""
        directive = request.query.get("fieldValidation") or "Warn"
        if directive not in FIELD_VALIDATION:
            raise errors.invalid(options_kind, "", [errors.not_supported_cause(
                "fieldValidation", directive, ["", *FIELD_VALIDATION])], META_GROUP)
        schema = kind_schema(strategy.kind)
        unknown = unknown_fields(obj, schema) if schema is not None else ()
        if not unknown:
            return obj
        problems = [f"unknown field {go_quote(path)}" for path in unknown]
        if directive == "Strict":
            why = "strict decoding error: " + ", ".join(problems)
            raise errors.bad_request(why) if patch else _cannot_handle(obj, strategy, why)
        if directive == "Warn":
            request.warnings += problems
        return without_fields(obj, schema, set(unknown))

    @staticmethod
    def _dry_run(values, options_kind: str) -> bool:
        """``dryRun``: only "All" exists; the request is checked in full but nothing is stored."""
        if values is None:
            return False
        values = [values] if isinstance(values, str) else list(values)
        if any(value != "All" for value in values):
            shown = "[]string{" + ", ".join(json.dumps(value) for value in values) + "}"
            raise errors.invalid(options_kind, "", [{
                "reason": "FieldValueNotSupported", "field": "dryRun",
                "message": f'Unsupported value: {shown}: supported values: "All"'}], META_GROUP)
        return bool(values)

    # -- bodies --------------------------------------------------------------------------------

    def _decode_body(self, request: Request, strategy: Strategy) -> dict:
        """The body as the typed object, or the 415/400 kube-apiserver answers for it."""
        media = request.headers.get("content-type", "").split(";")[0].strip().lower() or "application/json"
        if media not in BODY_MEDIA_TYPES:
            raise errors.unsupported_media_type(media, BODY_MEDIA_TYPES)
        body = request.body or b""
        try:
            obj = decode_yaml(body) if media == "application/yaml" else decode_json(body)
            if not isinstance(obj, dict):
                raise errors.bad_request(f"couldn't get version/kind; json parse error: {find_kind_error(obj)}")
            for type_field in ("apiVersion", "kind"):
                value = obj.get(type_field)
                if value is not None and not isinstance(value, str):
                    raise errors.bad_request(
                        f"couldn't get version/kind; json parse error: json: cannot unmarshal "
                        f"{go_json_type(value)} into Go struct field .{type_field} of type string")
        except ApiError as exc:  # no kind known yet: transformDecodeError's "unrecognized" form
            raise errors.bad_request(f"the object provided is unrecognized (must be of type "
                                     f"{strategy.kind}): {exc.message} ({summarize(body)})") from None
        if (obj.get("kind") or strategy.kind) != strategy.kind:
            raise _cannot_handle(obj, strategy, "the object kind does not match")
        try:
            return strategy.decode(obj)
        except DecodeError as exc:
            raise _cannot_handle(obj, strategy, str(exc)) from None


def _cannot_handle(obj: dict, strategy: Strategy, why: str) -> ApiError:
    """The 400 for a body of the wrong kind, or one that does not fit the typed object."""
    version = (obj.get("apiVersion") or "v1").rsplit("/", 1)[-1]
    return errors.bad_request(f"{obj.get('kind') or strategy.kind} in version {go_quote(version)} "
                              f"cannot be handled as a {strategy.kind}: {why}")


_HANDLERS: dict[tuple[str, bool], Callable] = {  # (method, names an item) -> handler
    ("GET", False): ApiServer._list_or_watch, ("POST", False): ApiServer._create,
    ("DELETE", False): ApiServer._delete_collection,
    ("GET", True): ApiServer._get, ("PUT", True): ApiServer._replace, ("PATCH", True): ApiServer._patch,
    ("DELETE", True): ApiServer._delete,
}

DISCOVERY_PATHS = ("/api", "/apis", "/api/v1", "/apis/authorization.k8s.io", "/apis/authorization.k8s.io/v1")
IN_CLUSTER_ADDRESS = "kubernetes.default.svc:443"   # what /api names as the server's address in-process

VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-kubesim", "platform": "linux/amd64"}

WATCH_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.")


def namespace_terminating(resource: str, meta: dict, namespace: str) -> ApiError:
    """NamespaceLifecycle admission's 403 for a create in a namespace being deleted (the name is
    the object's, or its generateName: admission runs before a name is generated)."""
    name = meta.get("name") or meta.get("generateName") or "Unknown"
    error = errors.forbidden(resource, name, f"unable to create new content in namespace {namespace} "
                                             f"because it is being terminated")
    error.details["causes"] = [{"reason": "NamespaceTerminating", "message": f"namespace {namespace} is being terminated",
                                "field": "metadata.namespace"}]
    return error


def warning_header(warnings: list[str]) -> str:
    """RFC 7234 Warning values as kube-apiserver sends them: code 299, agent "-", quoted text."""
    return ", ".join(f"299 - {go_quote(text)}" for text in dict.fromkeys(warnings))


def finalized(obj: dict) -> bool:
    """The generic store's shouldDeleteDuringUpdate: deleted, grace 0, no finalizer left."""
    meta = obj["metadata"]
    return (bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")
            and meta.get("deletionGracePeriodSeconds") == 0)


def metadata_only(reply: Reply, accept: str) -> Reply:
    """The answer as ``as=PartialObjectMetadata[List]`` when the client asks for it (406 when the
    form it names does not fit: a list form of one object, or the reverse)."""
    wanted = wants_metadata(accept) if "as=Partial" in accept else None
    if wanted is None:
        return reply
    shaped = as_metadata(reply.body, wanted[0])
    if shaped is None:
        return error_reply(errors.not_acceptable(("application/json", "application/yaml",
                                                  "application/vnd.kubernetes.protobuf")))
    body, content_type = shaped
    return Reply(200, body, {**reply.headers, "Content-Type": content_type})


def json_reply(status: int, obj: dict) -> Reply:
    return Reply(status, dumps(obj))


def error_reply(error: ApiError) -> Reply:
    return Reply(error.code, error.body(), {"Content-Type": error.content_type(), **error.headers})


def compact_json(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))


def encode_continue(rv: int, start: Key, issued: float) -> str:
    """A continue token; ``rv`` -1 means "go on at the latest revision" (after a 410)."""
    data = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(start), "t": issued})
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")
