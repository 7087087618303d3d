"""Metadata-only answers: what a client that asks for ``as=PartialObjectMetadata[List]`` gets.

kube-apiserver answers an Accept of
``application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io`` (as upstream Airflow's
executor sends when it lists its pods) with each object's metadata alone, under the meta.k8s.io/v1
kinds; a client that accepts nothing else but names a form the server cannot give gets 406.
"""

from __future__ import annotations

import orjson

META_V1 = "meta.k8s.io/v1"
FORMS = ("PartialObjectMetadata", "PartialObjectMetadataList")


def wants_metadata(accept: str) -> tuple[str, str] | None:
    """(form, media type) of the first metadata-only form the Accept header asks for, or None."""
    for part in accept.split(","):
        media, *params = (p.strip() for p in part.split(";"))
        named = dict(p.partition("=")[::2] for p in params)
        if named.get("as") in FORMS and named.get("g") == "meta.k8s.io" and named.get("v") == "v1":
            return named["as"], media or "application/json"
    return None


def partial_object(obj: dict) -> dict:
    return {"kind": "PartialObjectMetadata", "apiVersion": META_V1, "metadata": obj.get("metadata") or {}}


def as_metadata(body: bytes, form: str) -> tuple[bytes, str] | None:
    """The answer's body as the metadata-only form asked for, with its Content-Type; None when the
    form does not fit the answer (a List form asked of a single object, or the reverse)."""
    obj = orjson.loads(body)
    is_list = "items" in obj
    if is_list != (form == "PartialObjectMetadataList"):
        return None
    if is_list:
        meta = {k: v for k, v in (obj.get("metadata") or {}).items()
                if k in ("resourceVersion", "continue", "remainingItemCount")}
        shaped = {"kind": "PartialObjectMetadataList", "apiVersion": META_V1, "metadata": meta,
                  "items": [partial_object(item) for item in obj["items"]]}
    else:
        shaped = partial_object(obj)
    return orjson.dumps(shaped), f"application/json;as={form};g=meta.k8s.io;v=v1"

