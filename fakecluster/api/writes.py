"""The API server's writes: create, replace and patch (through one update), with what they share:
body decoding, fieldValidation's known fields, dryRun, request/object identity."""

from __future__ import annotations

import json

from . import status as errors
from .decoding import decode_json, decode_yaml, find_kind_error, go_json_type, summarize
from .messages import Reply, Request, Route, json_reply
from .patch import SUPPORTED_PATCH_TYPES, PatchError, apply_patch
from .query import META_GROUP, parse_stored_rv
from .schema import kind_schema, unknown_fields, without_fields
from .status import ApiError
from .store import ResourceStore
from .strategies import DecodeError, Strategy
from .validation import go_quote

FIELD_VALIDATION = ("Ignore", "Strict", "Warn")  # the fieldValidation directives (sorted, as Go lists them)
GENERATE_NAME_CHARS = "bcdfghjklmnpqrstvwxz2456789"
BODY_MEDIA_TYPES = ("application/json", "application/yaml")  # what create and update decode


class Writes:
    """``ApiServer``'s create, replace and patch (a mixin: ``self`` is the server)."""

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


def namespace_terminating(resource: str, meta: dict, namespace: str) -> ApiError:
    """NamespaceLifecycle admission's 403 for a create in a namespace being deleted (the name is
    the object's, or its generateName: admission runs before a name is generated)."""
    name = meta.get("name") or meta.get("generateName") or "Unknown"
    error = errors.forbidden(resource, name, f"unable to create new content in namespace {namespace} "
                                             f"because it is being terminated")
    error.details["causes"] = [{"reason": "NamespaceTerminating", "message": f"namespace {namespace} is being terminated",
                                "field": "metadata.namespace"}]
    return error


def finalized(obj: dict) -> bool:
    """The generic store's shouldDeleteDuringUpdate: deleted, grace 0, no finalizer left."""
    meta = obj["metadata"]
    return (bool(meta.get("deletionTimestamp")) and not meta.get("finalizers")
            and meta.get("deletionGracePeriodSeconds") == 0)


def compact_json(obj) -> str:
    return json.dumps(obj, separators=(",", ":"))
