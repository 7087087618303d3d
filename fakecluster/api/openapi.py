"""OpenAPI for kubectl: v3 with the schemas of the served kinds, and a minimal v2.

kubectl validates a manifest before sending it. With OpenAPI v3 it first asks whether the
server validates fields itself: a PATCH operation for the kind that takes the
``fieldValidation`` query parameter says yes, and kubectl then sends ``fieldValidation=Strict``
instead of validating on its side (the ApiServer enforces it, see ``schema``). ``kubectl explain``
reads the kind's schema from ``components.schemas``: generated from the installed client's
models (``schema``), with the list merge keys of strategic merge patch
(``x-kubernetes-patch-strategy``/``-merge-key``, from ``patch.LIST_MERGE_KEYS``) so that
``kubectl apply`` computes the patches it would for a real server. Older kubectl (before v3)
downloads the v2 document, as protobuf, which carries no schemas: there ``explain`` finds no
kind, and apply's strategic merge patch comes from kubectl's built-in types.
"""

from __future__ import annotations

import functools
import hashlib

import orjson

from .patch import LIST_MERGE_KEYS, MERGE_AS_SET
from .schema import Type, kind_schema, schema_name
from .server import VERSION, ApiServer

V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"   # what clients accept
V2_PROTOBUF_SENT = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"  # '@' breaks Go's mime parser
TITLE = "Kubernetes"


def v3_core(server: ApiServer) -> dict:
    """The OpenAPI v3 document of /api/v1: one PATCH operation per kind, and the kinds' schemas."""
    return _v3_core(tuple(sorted((resource, s.kind, s.namespaced) for resource, s in server.strategies.items())))


def v3_index(server: ApiServer) -> dict:
    """/openapi/v3: where each group-version's document is (the hash lets clients cache it)."""
    kinds = tuple(sorted((resource, s.kind, s.namespaced) for resource, s in server.strategies.items()))
    return {"paths": {"api/v1": {"serverRelativeURL": f"/openapi/v3/api/v1?hash={_v3_hash(kinds)}"}}}


@functools.lru_cache(maxsize=4)
def _v3_core(kinds: tuple) -> dict:
    paths, schemas = {}, {}
    pod = kind_schema("Pod")
    merge_keys = _merge_keys(pod) if pod is not None else {}   # the pod's lists, also in shared types
    for resource, kind, namespaced in kinds:
        scope = "/namespaces/{namespace}" if namespaced else ""
        paths[f"/api/v1{scope}/{resource}/{{name}}"] = {"patch": {
            "operationId": f"patchCoreV1{'Namespaced' if namespaced else ''}{kind}",
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": kind},
            "parameters": [{"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                           for name in ("dryRun", "fieldManager", "fieldValidation")],
            "responses": {"200": {"description": "OK"}},
        }}
        root = kind_schema(kind)
        if root is not None:
            _add_struct(root, schemas, merge_keys)
            schemas[schema_name(root.name)]["x-kubernetes-group-version-kind"] = [
                {"group": "", "kind": kind, "version": "v1"}]
    return {"openapi": "3.0.0", "info": {"title": TITLE, "version": VERSION["gitVersion"]}, "paths": paths,
            "components": {"schemas": schemas}}


@functools.lru_cache(maxsize=4)
def _v3_hash(kinds: tuple) -> str:
    return hashlib.sha512(orjson.dumps(_v3_core(kinds))).hexdigest()[:32].upper()


def _add_struct(node: Type, schemas: dict, merge_keys: dict) -> None:
    """``node``'s schema and, once each, the schemas it refers to."""
    name = schema_name(node.name)
    if name in schemas:
        return
    schema = schemas[name] = {"description": node.description, "type": "object", "properties": {}}
    for field, child in node.fields.items():
        prop = _property(child, schemas, merge_keys)
        text = node.descriptions.get(field) or (child.description if child.kind == "struct" else "")
        if text:  # (the 37.x models describe a field of a struct type only by its type's description)
            prop["description"] = text
        if (node.name, field) in merge_keys:
            prop["x-kubernetes-patch-strategy"] = "merge"
            merge = merge_keys[(node.name, field)]
            if merge is not MERGE_AS_SET:
                prop["x-kubernetes-patch-merge-key"] = merge
        schema["properties"][field] = prop
    if node.required:
        schema["required"] = list(node.required)


def _property(node: Type, schemas: dict, merge_keys: dict) -> dict:
    if node.kind == "struct":
        _add_struct(node, schemas, merge_keys)
        return {"allOf": [{"$ref": f"#/components/schemas/{schema_name(node.name)}"}], "default": {}}
    if node.kind == "list":
        return {"type": "array", "items": _property(node.item, schemas, merge_keys)}
    if node.kind == "map":
        return {"type": "object", "additionalProperties": _property(node.item, schemas, merge_keys)}
    if not node.name:  # a value the models leave open (int-or-string, raw JSON)
        return {"x-kubernetes-int-or-string": True} if node.format == "int-or-string" else {}
    return {"type": node.name, **({"format": node.format} if node.format else {})}


def _merge_keys(pod: Type) -> dict:
    """(model, field) -> merge key (or MERGE_AS_SET) of strategic merge patch, from the pod paths."""
    found = {}
    for path, key in LIST_MERGE_KEYS.items():
        node = pod
        for step in path[:-1]:
            child = node.fields.get(step) if node.kind == "struct" else None
            if child is None:
                break
            node = child.item if child.kind == "list" else child
        else:
            if node.kind == "struct" and path[-1] in node.fields:
                found[(node.name, path[-1])] = key
    return found


def v2_document(accept: str) -> tuple[bytes, str]:
    """/openapi/v2 as (body, content type): protobuf when asked for it (kubectl does), else JSON."""
    if V2_PROTOBUF in accept:
        info = _field(1, TITLE.encode()) + _field(2, VERSION["gitVersion"].encode())
        return _field(1, b"2.0") + _field(2, info), V2_PROTOBUF_SENT
    document = {"swagger": "2.0", "info": {"title": TITLE, "version": VERSION["gitVersion"]}, "paths": {}}
    return orjson.dumps(document), "application/json"


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited protobuf field (strings and messages shorter than 128 bytes)."""
    if len(payload) > 127:
        raise ValueError("payload too long for a one-byte length")
    return bytes([number << 3 | 2, len(payload)]) + payload
