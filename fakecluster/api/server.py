"""The simulated kube-apiserver: routing and dispatch, with the verbs of ``reads`` (get, list,
watch), ``writes`` (create, replace, patch) and ``deletes`` mixed into ``ApiServer``.

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

import random
from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from ..kernel.engine import Kernel
from . import access
from . import status as errors
from .deletes import Deletes
from .logs import PLAIN_TEXT, UNSERVED, LogSource, pod_log, unserved
from .messages import Reply, Request, Route, WatchReply, error_reply, json_reply
from .metadata_only import as_metadata, wants_metadata
from .query import parse_bool  # noqa: F401  (the front doors import it from here)
from .reads import Reads
from .selectors import EVENT_FIELDS, NAMESPACE_FIELDS, NODE_FIELDS, SERVICE_FIELDS
from .status import ApiError
from .store import ResourceStore, Revision
from .strategies import NamespaceStrategy, NodeStrategy, PodStrategy, Strategy
from .validation import go_quote
from .writes import Writes

MAX_BODY_BYTES = 3 * 1024 * 1024          # kube-apiserver's MaxRequestBodyBytes
CONTINUE_TTL = 300.0                       # continue tokens outlive etcd compaction by ~5 min


@dataclass
class ServerOptions:
    """Fidelity knobs where Kubernetes versions differ or the reference is unverified."""

    watch_cache_size: int = 100 * 1024
    watch_cache_seconds: float | None = None   # Kubernetes also drops events older than 75 s
    bookmark_interval: float = 60.0
    min_request_timeout: float = 1800.0
    deleted_event_has_deletion_timestamp: bool = True
    continue_ttl: float = CONTINUE_TTL


class ApiServer(Reads, Writes, Deletes):
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


_HANDLERS: dict[tuple[str, bool], Callable] = {  # (method, names an item) -> handler
    ("GET", False): ApiServer._list_or_watch, ("POST", False): ApiServer._create,
    ("DELETE", False): ApiServer._delete_collection,
    ("GET", True): ApiServer._get, ("PUT", True): ApiServer._replace, ("PATCH", True): ApiServer._patch,
    ("DELETE", True): ApiServer._delete,
}

DISCOVERY_PATHS = ("/api", "/apis", "/api/v1", "/apis/authorization.k8s.io", "/apis/authorization.k8s.io/v1")
IN_CLUSTER_ADDRESS = "kubernetes.default.svc:443"   # what /api names as the server's address in-process

VERSION = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-kubesim", "platform": "linux/amd64"}


def warning_header(warnings: list[str]) -> str:
    """RFC 7234 Warning values as kube-apiserver sends them: code 299, agent "-", quoted text."""
    return ", ".join(f"299 - {go_quote(text)}" for text in dict.fromkeys(warnings))


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
