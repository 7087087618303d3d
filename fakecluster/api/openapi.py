"""Just enough OpenAPI for kubectl's create and apply, and no schemas.

kubectl validates a manifest before sending it. With OpenAPI v3 it first asks whether the
server validates fields itself: a PATCH operation for the kind that takes the
``fieldValidation`` query parameter says yes, and kubectl then sends ``fieldValidation=Strict``
instead of validating on its side (the ApiServer enforces it, see ``schema``). Older kubectl (before v3) downloads the v2 document, as
protobuf, and skips validation for kinds it does not describe. ``kubectl apply`` computes its
strategic merge patch from kubectl's built-in types when the documents describe no schema.
"""

from __future__ import annotations

import hashlib

import orjson

from .server import VERSION, ApiServer

V2_PROTOBUF = "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"   # what clients accept
V2_PROTOBUF_SENT = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"  # '@' breaks Go's mime parser
TITLE = "Kubernetes"


def v3_core(server: ApiServer) -> dict:
    """The OpenAPI v3 document of /api/v1: one PATCH operation per kind, schema-less."""
    paths = {}
    for resource, strategy in sorted(server.strategies.items()):
        scope = "/namespaces/{namespace}" if strategy.namespaced else ""
        paths[f"/api/v1{scope}/{resource}/{{name}}"] = {"patch": {
            "operationId": f"patchCoreV1{'Namespaced' if strategy.namespaced else ''}{strategy.kind}",
            "x-kubernetes-action": "patch",
            "x-kubernetes-group-version-kind": {"group": "", "version": "v1", "kind": strategy.kind},
            "parameters": [{"name": name, "in": "query", "schema": {"type": "string", "uniqueItems": True}}
                           for name in ("dryRun", "fieldManager", "fieldValidation")],
            "responses": {"200": {"description": "OK"}},
        }}
    return {"openapi": "3.0.0", "info": {"title": TITLE, "version": VERSION["gitVersion"]}, "paths": paths}


def v3_index(server: ApiServer) -> dict:
    """/openapi/v3: where each group-version's document is (the hash lets clients cache it)."""
    digest = hashlib.sha512(orjson.dumps(v3_core(server))).hexdigest()[:32].upper()
    return {"paths": {"api/v1": {"serverRelativeURL": f"/openapi/v3/api/v1?hash={digest}"}}}


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
