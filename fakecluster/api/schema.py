"""The fields of each served kind, generated from the installed ``kubernetes`` client's models.

The client's generated models (``openapi_types`` and ``attribute_map``, in both the classic 36.x
and the pydantic 37.x generation) are a faithful copy of core/v1's OpenAPI schema. From them
this module builds, once per kind, a tree of ``Type`` nodes: what the API server needs to find
unknown fields (field validation) and to publish an OpenAPI v3 schema (``kubectl explain``).
Nothing here is written by hand but the mapping of Go packages to schema names.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

import kubernetes.client.models as models

KIND_MODELS = {"Pod": "V1Pod", "Namespace": "V1Namespace", "Node": "V1Node", "Event": "CoreV1Event",
               "Service": "V1Service"}
# apimachinery's meta/v1 types, which live outside core/v1 in the OpenAPI document
META_TYPES = {"ObjectMeta", "OwnerReference", "ManagedFieldsEntry", "ListMeta", "Status", "StatusDetails",
              "StatusCause", "DeleteOptions", "Preconditions", "LabelSelector", "LabelSelectorRequirement",
              "Condition", "Time", "MicroTime", "FieldsV1"}

_LIST = re.compile(r"^(?:List|list)\[(.+)\]$")
_MAP = re.compile(r"^(?:[Dd]ict\[str, (.+)\]|dict\(str, (.+)\))$")
_SCALARS = {"str": ("string", None), "int": ("integer", "int64"), "float": ("number", "double"),
            "bool": ("boolean", None), "datetime": ("string", "date-time"), "date": ("string", "date"),
            "object": (None, None)}


@dataclass
class Type:
    """One node of a kind's schema: a struct (``fields``), a list or map of ``item``, or a scalar."""

    kind: str                       # "struct", "list", "map" or "scalar"
    name: str = ""                  # the model's name for a struct ("V1PodSpec"), the JSON type for a scalar
    format: str | None = None
    item: "Type | None" = None
    fields: dict[str, "Type"] = field(default_factory=dict)        # JSON name -> type
    descriptions: dict[str, str] = field(default_factory=dict)     # JSON name -> description
    required: tuple[str, ...] = ()
    description: str = ""
    known: frozenset = frozenset()  # the JSON names of ``fields``, for a quick subset check
    nested: dict[str, "Type"] = field(default_factory=dict)        # the fields that hold structs

    @property
    def holds_structs(self) -> bool:
        return self.kind == "struct" or (self.item is not None and self.item.holds_structs)


def kind_schema(kind: str) -> Type | None:
    """The schema of a served kind (None for a kind the client has no model of)."""
    name = KIND_MODELS.get(kind)
    return _model(name) if name and hasattr(models, name) else None


def schema_name(model: str) -> str:
    """The OpenAPI name of a model: V1PodSpec -> io.k8s.api.core.v1.PodSpec."""
    bare = re.sub(r"^(?:Core)?V1", "", model)
    package = "io.k8s.apimachinery.pkg.apis.meta.v1" if bare in META_TYPES else "io.k8s.api.core.v1"
    return f"{package}.{bare}"


@functools.lru_cache(maxsize=None)
def _model(name: str) -> Type:
    cls = getattr(models, name)
    node = Type("struct", name, description=_class_description(cls))
    _building[name] = node   # a model that refers back to itself gets this node
    try:
        for attribute, type_text in cls.openapi_types.items():
            json_name = cls.attribute_map[attribute]
            node.fields[json_name] = _parse(type_text)
            text = _field_description(cls, attribute)
            if text:
                node.descriptions[json_name] = text
        node.required = tuple(cls.attribute_map[a] for a in _required(cls))
    finally:
        del _building[name]
    node.known = frozenset(node.fields)
    node.nested = {k: t for k, t in node.fields.items() if t.holds_structs}
    return node


_building: dict[str, Type] = {}


def _parse(text: str) -> Type:
    text = text.strip()
    if match := _LIST.match(text):
        return Type("list", item=_parse(match.group(1)))
    if match := _MAP.match(text):
        return Type("map", item=_parse(match.group(1) or match.group(2)))
    if text in _SCALARS:
        json_type, fmt = _SCALARS[text]
        return Type("scalar", json_type or "", fmt)
    if text in _building:
        return _building[text]
    if hasattr(models, text):
        return _model(text)
    return Type("scalar")  # a type the client does not model: anything goes


def _class_description(cls) -> str:
    text = (cls.__doc__ or "").strip()
    if text.startswith("NOTE: This class is auto generated"):
        return ""  # the classic client's classes carry no description of their own
    return " ".join(text.split("Attributes:")[0].split())


def _field_description(cls, attribute: str) -> str:
    fields = getattr(cls, "model_fields", None)
    if fields is not None:  # pydantic models (37.x)
        info = fields.get(attribute)
        return " ".join((info.description or "").split()) if info is not None else ""
    prop = getattr(cls, attribute, None)  # classic models (36.x): the property's docstring
    doc = getattr(prop, "__doc__", None) or ""
    lines = [line.replace("# noqa: E501", "").strip() for line in doc.splitlines()]
    body = [line for line in lines if line and not line.startswith((":", "Gets the", "Sets the"))]
    return " ".join(body)


def _required(cls) -> list[str]:
    fields = getattr(cls, "model_fields", None)
    if fields is None:
        return []   # the classic models do not say which fields are required
    return [name for name, info in fields.items() if info.is_required()]


# -- unknown fields ------------------------------------------------------------------------------

def unknown_fields(value: dict, schema: Type) -> list[str]:
    """The paths of fields ``schema`` does not know, in document order ("spec.containers[0].foo")."""
    if _all_known(value, schema):  # the usual case, checked without building any path
        return []
    found: list[str] = []
    _walk(value, schema, "", found)
    return found


def _all_known(value, node: Type) -> bool:
    kind = node.kind
    if kind == "struct":
        if value.__class__ is not dict:
            return True
        if not value.keys() <= node.known:
            return False
        nested = node.nested
        for key in value.keys() & nested.keys():
            sub = value[key]
            if sub is not None and not _all_known(sub, nested[key]):
                return False
        return True
    item = node.item
    if kind == "list" and value.__class__ is list:
        return all(_all_known(sub, item) for sub in value)
    if kind == "map" and value.__class__ is dict:
        return all(_all_known(sub, item) for sub in value.values())
    return True


def _walk(value, node: Type, path: str, found: list) -> None:
    if node.kind == "struct":
        if value.__class__ is not dict:
            return
        known, nested = node.known, node.nested
        for key, sub in value.items():
            child = nested.get(key)
            if child is not None:
                if sub is not None:
                    _walk(sub, child, f"{path}{key}.", found)
            elif key not in known:
                found.append(f"{path}{key}")
    elif node.kind == "list" and value.__class__ is list:
        base = path[:-1]
        for i, item in enumerate(value):
            _walk(item, node.item, f"{base}[{i}].", found)
    elif node.kind == "map" and value.__class__ is dict:
        base = path[:-1]
        for key, item in value.items():
            _walk(item, node.item, f"{base}[{key}].", found)


def without_fields(value, node: Type, unknown: set[str], path: str = ""):
    """``value`` without the fields at the ``unknown`` paths (a copy; the input is left alone)."""
    if node.kind == "struct" and value.__class__ is dict:
        kept = {}
        for key, sub in value.items():
            if f"{path}{key}" in unknown:
                continue
            child = node.nested.get(key)
            kept[key] = sub if child is None or sub is None else without_fields(sub, child, unknown, f"{path}{key}.")
        return kept
    if node.kind == "list" and value.__class__ is list:
        return [without_fields(item, node.item, unknown, f"{path[:-1]}[{i}].") for i, item in enumerate(value)]
    if node.kind == "map" and value.__class__ is dict:
        return {k: without_fields(item, node.item, unknown, f"{path[:-1]}[{k}].") for k, item in value.items()}
    return value
