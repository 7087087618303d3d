"""The API server's reads: get, list (the resourceVersion table, paging with continue tokens),
watch, and the wait for a resourceVersion the server has not reached yet."""

from __future__ import annotations

import base64
import binascii
import json

from . import status as errors
from .messages import Reply, Request, Route, WatchReply, json_reply
from .query import EXACT, parse_bool, parse_int, parse_rv, validate_list_options
from .selectors import SelectorError, parse_label_selector
from .status import ApiError
from .store import Change, Key, ResourceStore, key_of
from .stream import Stream
from .watch import Watcher

TOO_NEW_RV_WAIT = 3.0                      # the watch cache's blockTimeout


class Reads:
    """``ApiServer``'s get, list and watch (a mixin: ``self`` is the server)."""

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


WATCH_HEAD = (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")

CONTINUE_EXPIRED = (
    "The provided continue parameter is too old to display a consistent list result. You can "
    "start a new list without the continue parameter, or use the continue token in this response "
    "to retrieve the remainder of the results. Continuing with the provided token results in an "
    "inconsistent list - objects that were created, modified, or deleted between the time the "
    "first chunk was returned and now may show up in the list.")


def encode_continue(rv: int, start: Key, issued: float) -> str:
    """A continue token; ``rv`` -1 means "go on at the latest revision" (after a 410)."""
    data = json.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": list(start), "t": issued})
    return base64.urlsafe_b64encode(data.encode()).decode().rstrip("=")
