"""The API server's deletes: one object or a namespaced collection, DeleteOptions and
preconditions, graceful deletion and finalizers."""

from __future__ import annotations

from . import status as errors
from .decoding import decode_json, find_kind_error
from .messages import Reply, Request, Route, json_reply
from .query import META_GROUP, parse_bool, parse_int, validate_list_options
from .store import ResourceStore, key_of
from .strategies import DELETE_OPTIONS, IMMORTAL_NAMESPACES, DecodeError, decode_typed


class Deletes:
    """``ApiServer``'s delete and deletecollection (a mixin: ``self`` is the server)."""

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
