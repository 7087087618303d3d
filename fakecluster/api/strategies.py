"""Per-resource rules of the API server: defaults, validation, update and delete policy.

Mirrors the registry strategies of kube-apiserver (``pkg/registry/core/pod/strategy.go`` and
friends) at the depth a pod-launching client can observe.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field

from . import validation
from .decoding import go_json_type
from .selectors import POD_FIELDS, FieldSelector, SelectableFields, SelectorError, parse_field_selector

TERMINAL_PHASES = ("Succeeded", "Failed")

# Fields of a pod spec a client may change after creation (kubernetes' ValidatePodUpdate).
MUTABLE_POD_SPEC = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")


class Strategy:
    """Cluster-scoped or namespaced objects with no extra rules (namespaces, nodes, events)."""

    # A PUT without metadata.resourceVersion overwrites whatever is stored (true for every core
    # resource served here; a strategy without it answers 422 "must be specified for an update").
    allow_unconditional_update = True

    def __init__(self, resource: str, kind: str, namespaced: bool, fields: SelectableFields):
        self.resource, self.kind, self.namespaced = resource, kind, namespaced
        self.fields = fields  # what ?fieldSelector= may name (the kind's field-label conversion)
        self.schema = Struct(f"v1.{kind}", {"apiVersion": STRING, "kind": STRING, "metadata": OBJECT_META})

    def decode(self, obj: dict) -> dict:
        """``obj`` as the typed object would hold it, or DecodeError with Go's decoder message."""
        return decode_typed(self.schema, obj)

    def prepare_create(self, obj: dict) -> dict:
        return obj

    def validate(self, obj: dict) -> list[dict]:
        meta = obj["metadata"]
        causes = validation.validate_labels(meta.get("labels") or {})
        causes += validation.validate_annotations(meta.get("annotations") or {})
        return [c.to_dict() for c in causes] + owner_reference_causes(meta.get("ownerReferences") or [])

    def validate_name(self, name: str, generate_name: str | None = None) -> list[dict]:
        return [c.to_dict() for c in validation.validate_pod_name(name, generate_name)]

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return self.validate(new)

    def warnings(self, obj: dict) -> list[str]:
        """What a create answers in Warning headers: accepted, but probably not what was meant."""
        return []

    def prepare_update(self, new: dict, old: dict, subresource: str | None) -> dict:
        return new

    def grace_period(self, obj: dict, requested: int | None) -> int:
        return 0

    def begin_finalization(self, obj: dict, now: str) -> dict | None:
        """The object as a DELETE leaves it while something must finish first (None: delete it)."""
        return None

    def field_selector(self, text: str | None) -> FieldSelector:
        return parse_field_selector(text, self.fields)


# NamespaceLifecycle admission's immortal namespaces: a DELETE of these is refused (403)
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")


class NamespaceStrategy(Strategy):
    """A namespace is deleted in two steps (pkg/registry/core/namespace/storage): the DELETE
    marks it Terminating; the namespace controller empties it, then removes it."""

    def validate_name(self, name: str, generate_name: str | None = None) -> list[dict]:
        return [c.to_dict() for c in validation.validate_namespace_name(name, "metadata.name")]

    def prepare_create(self, obj: dict) -> dict:
        return {**obj, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}

    def prepare_update(self, new: dict, old: dict, subresource: str | None) -> dict:
        """Clients change neither the phase nor the finalizers (the controller's /finalize does)."""
        return {**new, "spec": {**(new.get("spec") or {}), "finalizers": old["spec"].get("finalizers", [])},
                "status": old.get("status", {})}

    def begin_finalization(self, namespace: dict, now: str) -> dict | None:
        if not (namespace.get("spec") or {}).get("finalizers"):
            return None
        if namespace["metadata"].get("deletionTimestamp"):
            return namespace  # already Terminating: a second DELETE changes nothing
        return {**namespace, "metadata": {**namespace["metadata"], "deletionTimestamp": now},
                "status": {**namespace.get("status", {}), "phase": "Terminating"}}


class NodeStrategy(Strategy):
    def prepare_update(self, new: dict, old: dict, subresource: str | None) -> dict:
        """As for pods: the main resource cannot change status, the status subresource only status."""
        if subresource == "status":
            return {**old, "metadata": merge_meta_for_status(new, old), "status": new.get("status", {})}
        return {**new, "status": old.get("status", {})}


class PodStrategy(Strategy):
    def __init__(self):
        super().__init__("pods", "Pod", True, POD_FIELDS)
        self.schema = POD

    def prepare_create(self, pod: dict) -> dict:
        spec = dict(pod.get("spec") or {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
        spec.setdefault("securityContext", {})
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec["tolerations"] = with_default_tolerations(spec.get("tolerations") or [])
        spec["containers"] = [default_container(c) for c in spec.get("containers") or []]
        status = {"phase": "Pending", "qosClass": qos_class(spec["containers"])}
        return {**pod, "spec": spec, "status": status}

    def validate(self, pod: dict) -> list[dict]:
        causes = super().validate(pod)
        containers = (pod.get("spec") or {}).get("containers")
        if not containers:
            causes.append({"reason": "FieldValueRequired", "message": "Required value",
                           "field": "spec.containers"})
        seen = set()
        for i, container in enumerate(containers or []):
            causes += container_causes(container, f"spec.containers[{i}]", seen)
        return causes

    def warnings(self, pod: dict) -> list[str]:
        spec = pod.get("spec") or {}
        return [warning for key in ("initContainers", "containers")
                for i, container in enumerate(spec.get(key) or [])
                for warning in hidden_env_warnings(container, f"spec.{key}[{i}]")]

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        causes = self.validate(new)
        if strip_mutable(new.get("spec") or {}) != strip_mutable(old.get("spec") or {}):
            causes.append({"reason": "FieldValueForbidden", "field": "spec",
                           "message": "Forbidden: pod updates may not change fields other than "
                                      "`spec.containers[*].image`,`spec.initContainers[*].image`,"
                                      "`spec.activeDeadlineSeconds`,`spec.tolerations` (only "
                                      "additions to existing tolerations),"
                                      "`spec.terminationGracePeriodSeconds` (allow it to be set "
                                      "to 1 if it was previously negative)"})
        return causes

    def prepare_update(self, new: dict, old: dict, subresource: str | None) -> dict:
        """The main resource cannot change status; the status subresource changes only status."""
        if subresource == "status":
            return {**old, "metadata": merge_meta_for_status(new, old), "status": new.get("status", {})}
        return {**new, "status": old.get("status", {})}

    def grace_period(self, pod: dict, requested: int | None) -> int:
        """kube-apiserver's CheckGracefulDelete for pods."""
        if not pod["spec"].get("nodeName"):
            return 0
        if pod.get("status", {}).get("phase") in TERMINAL_PHASES:
            return 0
        grace = requested if requested is not None else pod["spec"].get("terminationGracePeriodSeconds", 30)
        return 1 if grace < 0 else grace


def default_container(container: dict) -> dict:
    image = container.get("image", "")
    pull = "Always" if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1] else "IfNotPresent"
    return {"imagePullPolicy": pull, "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", "resources": {}, **container}


def with_default_tolerations(tolerations: list[dict]) -> list[dict]:
    """DefaultTolerationSeconds admission: 300 s on not-ready and unreachable nodes, added
    unless the pod already tolerates that taint's NoExecute effect."""
    result = list(tolerations)
    for taint in ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable"):
        if not tolerated(tolerations, taint):
            result.append({"key": taint, "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300})
    return result


def tolerated(tolerations: list[dict], taint_key: str) -> bool:
    """Does any of ``tolerations`` tolerate the taint's NoExecute effect? (A loop, as any() over
    a generator costs more than the usual empty check.)"""
    for toleration in tolerations:
        if tolerates_no_execute(toleration, taint_key):
            return True
    return False


def tolerates_no_execute(toleration: dict, taint_key: str) -> bool:
    key = toleration.get("key")
    matches_key = key == taint_key or (not key and toleration.get("operator") == "Exists")
    return matches_key and toleration.get("effect") in (None, "", "NoExecute")


def qos_class(containers: list[dict]) -> str:
    requested, guaranteed = False, True
    for container in containers:
        resources = container.get("resources") or {}
        requests, limits = resources.get("requests"), resources.get("limits")
        requested = requested or bool(requests or limits)
        guaranteed = guaranteed and limits_guaranteed(requests, limits)
    if not requested:
        return "BestEffort"
    return "Guaranteed" if guaranteed else "Burstable"


def limits_guaranteed(requests: dict | None, limits: dict | None) -> bool:
    """Limits on cpu and memory, and every request (if any is given) equal to its limit."""
    return bool(limits) and {"cpu", "memory"} <= set(limits) and \
        all(limits.get(k) == v for k, v in (requests or limits).items())


def container_causes(container: dict, field: str, seen: set) -> list[dict]:
    causes = []
    name = container.get("name")
    if not name:
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": f"{field}.name"})
    elif name in seen:
        causes.append({"reason": "FieldValueDuplicate", "message": f'Duplicate value: "{name}"',
                       "field": f"{field}.name"})
    else:
        seen.add(name)
        causes += [c.to_dict() for c in validation.validate_namespace_name(name, f"{field}.name")]
    if not container.get("image"):
        causes.append({"reason": "FieldValueRequired", "message": "Required value", "field": f"{field}.image"})
    for i, env in enumerate(container.get("env") or []):
        if not env.get("name"):
            causes.append({"reason": "FieldValueRequired", "message": "Required value",
                           "field": f"{field}.env[{i}].name"})
    return causes


def hidden_env_warnings(container: dict, field: str) -> list[str]:
    """GetWarningsForPod: an env name given twice hides the first value (and a strategic merge
    patch of the whole list collapses the two), unless the later value builds on it as $(NAME)."""
    warnings, seen = [], set()
    for i, env in enumerate(container.get("env") or []):
        name = env.get("name")
        if name not in seen:
            seen.add(name)
            continue
        value, reference = env.get("value") or "", f"$({name})"
        if env.get("valueFrom") is not None or value == reference or reference not in value:
            warnings.append(f"{field}.env[{i}]: hides previous definition of {validation.go_quote(name)}, "
                            "which may be dropped when using apply")
    return warnings


def owner_reference_causes(references: list) -> list[dict]:
    """ValidateOwnerReferences: each names its owner fully (apiVersion with a version, kind, name, uid)."""
    causes = []
    for i, ref in enumerate(references):
        for key, detail in (("apiVersion", "version must not be empty"), ("kind", "must not be empty"),
                            ("name", "must not be empty"), ("uid", "must not be empty")):
            value = ref.get(key) or ""
            if not (value.rsplit("/", 1)[-1] if key == "apiVersion" else value):
                causes.append({"reason": "FieldValueInvalid", "field": f"metadata.ownerReferences[{i}].{key}",
                               "message": f"Invalid value: {validation.go_quote(value)}: {detail}"})
    return causes


def strip_mutable(spec: dict) -> dict:
    spec = {k: v for k, v in spec.items() if k not in MUTABLE_POD_SPEC}
    for key in ("containers", "initContainers"):
        if key in spec:
            spec[key] = [{k: v for k, v in c.items() if k != "image"} for c in spec[key]]
    return spec


def merge_meta_for_status(new: dict, old: dict) -> dict:
    """A status update may carry a newer resourceVersion precondition, nothing else of metadata."""
    return {**old["metadata"], "resourceVersion": new["metadata"].get("resourceVersion",
                                                                      old["metadata"]["resourceVersion"])}


# -- decoding: the Go types a JSON body must fit ----------------------------------------------
#
# kube-apiserver decodes a body into typed Go structs before anything else looks at it, so a
# field of the wrong JSON type is a 400 with encoding/json's message, e.g. "json: cannot unmarshal
# number into Go struct field ObjectMeta.metadata.name of type string" (the innermost struct, the
# JSON path without indices, the Go type). A null is every type's zero value. Only the fields a
# pod-launching client touches are typed here; anything else passes through untouched.

class DecodeError(ValueError):
    """A body that does not fit the typed object; ``str()`` is Go's decoder message."""


class _Misfit(Exception):
    """A value of the wrong JSON type, on its way up to the struct that names it: each struct it
    passes adds its field, so the path is built only for a body that is wrong."""

    def __init__(self, value, go_type: str):
        self.value, self.go_type = value, go_type
        self.struct: str | None = None  # the innermost struct holding the field
        self.keys: list[str] = []       # the field path, innermost first

    def error(self) -> DecodeError:
        shown = go_json_type(self.value)
        if shown == "number" and self.go_type in _INT_RANGES:
            shown = f"number {self.value!r}"  # Go names the literal it could not fit into the integer
        path = ".".join(reversed(self.keys))
        where = f"Go struct field {self.struct}.{path}" if path else "Go value"
        return DecodeError(f"json: cannot unmarshal {shown} into {where} of type {self.go_type}")


def decode_typed(schema, value):
    """``value`` as the typed ``schema`` holds it (sharing what needs no change), or DecodeError."""
    try:
        return schema.decode(value)
    except _Misfit as misfit:
        raise misfit.error() from None


_INT_RANGES = {"int64": (-2**63, 2**63 - 1), "int32": (-2**31, 2**31 - 1)}


@dataclass(frozen=True)
class Scalar:
    name: str            # the Go type as printed: "string", "int64", "v1.RestartPolicy", ...
    json: str = "string"  # the one JSON type it takes
    zero: object = ""
    plain: type | None = field(init=False, default=None)  # values of this type pass unchecked

    def __post_init__(self):
        object.__setattr__(self, "plain", {"string": str, "bool": bool}.get(self.json))

    def decode(self, value):
        if value is None:
            return self.zero
        if go_json_type(value) != self.json:
            raise _Misfit(value, self.name)
        bounds = _INT_RANGES.get(self.name)
        if bounds and (isinstance(value, float) or not bounds[0] <= value <= bounds[1]):
            raise _Misfit(value, self.name)
        return value


@dataclass(frozen=True)
class ListOf:
    item: object
    plain = None

    @property
    def name(self) -> str:
        return "[]" + self.item.name

    def decode(self, value):
        if value is None:
            return None
        if not isinstance(value, list):
            raise _Misfit(value, self.name)
        plain = self.item.plain
        if plain is not None and _all_of_type(value, plain):
            return value  # command and args: all strings, nothing to convert
        return _decode_items(value, enumerate(value), self.item.decode)


@dataclass(frozen=True)
class MapOf:
    value: object
    name: str = "map[string]string"
    plain = None

    def decode(self, value):
        if value is None:
            return None
        if not isinstance(value, dict):
            raise _Misfit(value, self.name)
        plain = self.value.plain
        if plain is not None and _all_of_type(value.values(), plain):
            return value  # labels and annotations: all strings, nothing to convert
        return _decode_items(value, value.items(), self.value.decode)


@dataclass(frozen=True)
class Struct:
    name: str                                   # "v1.ObjectMeta"
    fields: dict = field(default_factory=dict)  # JSON name -> type; other fields pass through
    plain = None

    def decode(self, value):
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise _Misfit(value, self.name)
        changed = None  # the decoded object shares everything that needed no change
        fields = self.fields
        for key, item in value.items():
            kind = fields.get(key)
            if item is None:
                new = _DROP  # a null field is the zero value, which the server leaves out
            elif kind is None or type(item) is kind.plain:
                continue  # unknown fields pass through; plain strings need no check
            else:
                try:
                    new = kind.decode(item)
                except _Misfit as misfit:
                    misfit.keys.append(key)
                    misfit.struct = misfit.struct or self.name.rsplit(".", 1)[-1]
                    raise
                if new is item:
                    continue
            if changed is None:
                changed = {}
            changed[key] = new
        if changed is None:
            return value
        pairs = ((key, changed.get(key, item)) for key, item in value.items())
        return {key: item for key, item in pairs if item is not _DROP}


_DROP = object()  # marks a field the decoded object leaves out


def _decode_items(container, places, decode):
    """``container`` (a list or a dict) with each item decoded: the same object when nothing
    changes, else a copy made once, at the first item that does. ``places``: (index or key, item)."""
    decoded = None
    for place, item in places:
        new = decode(item)
        if new is not item:
            if decoded is None:
                decoded = container.copy()
            decoded[place] = new
    return container if decoded is None else decoded


def _all_of_type(items, plain: type) -> bool:
    """Every item is exactly a ``plain`` (a loop: cheaper than all() over a generator)."""
    for item in items:
        if type(item) is not plain:
            return False
    return True


# resource.Quantity (k8s.io/apimachinery/pkg/api/resource): a string or a bare JSON number.
QUANTITY_ERROR = ("quantities must match the regular expression "
                  "'^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'")
_QUANTITY = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?")


class QuantityType:
    name = "resource.Quantity"
    plain = None

    def decode(self, value):
        if value is None:
            return "0"
        if isinstance(value, bool) or not isinstance(value, (str, int, float)) or not _is_quantity(str(value)):
            raise DecodeError(QUANTITY_ERROR)
        return value


@functools.lru_cache(maxsize=1024)  # a load asks about the same few quantities ("100m", "64Mi")
def _is_quantity(text: str) -> bool:
    return _QUANTITY.fullmatch(text) is not None


STRING, BOOL = Scalar("string"), Scalar("bool", "bool", False)
INT64, INT32 = Scalar("int64", "number", 0), Scalar("int32", "number", 0)
STRINGS, STRING_MAP = ListOf(STRING), MapOf(STRING)
RESOURCES = MapOf(QuantityType(), "v1.ResourceList")

OBJECT_META = Struct("v1.ObjectMeta", {
    "name": STRING, "generateName": STRING, "namespace": STRING, "uid": Scalar("types.UID"),
    "resourceVersion": STRING, "generation": INT64, "deletionGracePeriodSeconds": INT64,
    "labels": STRING_MAP, "annotations": STRING_MAP, "finalizers": STRINGS,
    "ownerReferences": ListOf(Struct("v1.OwnerReference", {
        "apiVersion": STRING, "kind": STRING, "name": STRING, "uid": Scalar("types.UID"),
        "controller": BOOL, "blockOwnerDeletion": BOOL})),
})

CONTAINER = Struct("v1.Container", {
    "name": STRING, "image": STRING, "command": STRINGS, "args": STRINGS, "workingDir": STRING,
    "imagePullPolicy": Scalar("v1.PullPolicy"),
    "env": ListOf(Struct("v1.EnvVar", {"name": STRING, "value": STRING})),
    "resources": Struct("v1.ResourceRequirements", {"limits": RESOURCES, "requests": RESOURCES}),
})

POD_SPEC = Struct("v1.PodSpec", {
    "containers": ListOf(CONTAINER), "initContainers": ListOf(CONTAINER),
    "restartPolicy": Scalar("v1.RestartPolicy"), "dnsPolicy": Scalar("v1.DNSPolicy"),
    "nodeName": STRING, "nodeSelector": STRING_MAP, "serviceAccountName": STRING,
    "serviceAccount": STRING, "schedulerName": STRING, "priorityClassName": STRING,
    "hostNetwork": BOOL, "enableServiceLinks": BOOL, "priority": INT32,
    "terminationGracePeriodSeconds": INT64, "activeDeadlineSeconds": INT64,
    "tolerations": ListOf(Struct("v1.Toleration", {
        "key": STRING, "operator": Scalar("v1.TolerationOperator"), "value": STRING,
        "effect": Scalar("v1.TaintEffect"), "tolerationSeconds": INT64})),
})

POD_STATUS = Struct("v1.PodStatus", {
    "phase": Scalar("v1.PodPhase"), "reason": STRING, "message": STRING, "hostIP": STRING,
    "podIP": STRING, "nominatedNodeName": STRING, "qosClass": Scalar("v1.PodQOSClass"),
    "conditions": ListOf(Struct("v1.PodCondition", {
        "type": Scalar("v1.PodConditionType"), "status": Scalar("v1.ConditionStatus"),
        "reason": STRING, "message": STRING})),
    "containerStatuses": ListOf(Struct("v1.ContainerStatus", {
        "name": STRING, "ready": BOOL, "restartCount": INT32, "image": STRING,
        "imageID": STRING, "containerID": STRING, "started": BOOL})),
})

POD = Struct("v1.Pod", {"apiVersion": STRING, "kind": STRING, "metadata": OBJECT_META,
                        "spec": POD_SPEC, "status": POD_STATUS})

DELETE_OPTIONS = Struct("v1.DeleteOptions", {
    "apiVersion": STRING, "kind": STRING, "gracePeriodSeconds": INT64, "orphanDependents": BOOL,
    "propagationPolicy": Scalar("v1.DeletionPropagation"), "dryRun": STRINGS,
    "preconditions": Struct("v1.Preconditions", {"uid": Scalar("types.UID"), "resourceVersion": STRING}),
})


__all__ = ["Strategy", "PodStrategy", "NamespaceStrategy", "NodeStrategy", "IMMORTAL_NAMESPACES", "SelectorError", "TERMINAL_PHASES",
           "DecodeError", "DELETE_OPTIONS", "decode_typed"]
