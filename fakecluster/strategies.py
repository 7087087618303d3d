"""Per-resource rules of the API server: defaults, validation, update and delete policy.

Mirrors the registry strategies of kube-apiserver (``pkg/registry/core/pod/strategy.go`` and
friends) at the depth a pod-launching client can observe.
"""

from __future__ import annotations

from . import validation
from .selectors import FieldSelector, SelectorError, parse_field_selector

TERMINAL_PHASES = ("Succeeded", "Failed")

# Fields of a pod spec a client may change after creation (kubernetes' ValidatePodUpdate).
MUTABLE_POD_SPEC = ("activeDeadlineSeconds", "tolerations", "terminationGracePeriodSeconds")


class Strategy:
    """Cluster-scoped or namespaced objects with no extra rules (namespaces, nodes, events)."""

    def __init__(self, resource: str, kind: str, namespaced: bool):
        self.resource, self.kind, self.namespaced = resource, kind, namespaced

    def prepare_create(self, obj: dict) -> dict:
        return obj

    def validate(self, obj: dict) -> list[dict]:
        meta = obj["metadata"]
        causes = validation.validate_labels(meta.get("labels") or {})
        causes += validation.validate_annotations(meta.get("annotations") or {})
        return [c.to_dict() for c in causes]

    def validate_name(self, name: str) -> list[dict]:
        return [c.to_dict() for c in validation.validate_pod_name(name)]

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        return self.validate(new)

    def prepare_update(self, new: dict, old: dict, subresource: str | None) -> dict:
        return new

    def grace_period(self, obj: dict, requested: int | None) -> int:
        return 0

    def field_selector(self, text: str | None) -> FieldSelector:
        return parse_object_field_selector(text)


class NamespaceStrategy(Strategy):
    def validate_name(self, name: str) -> list[dict]:
        return [c.to_dict() for c in validation.validate_namespace_name(name, "metadata.name")]

    def prepare_create(self, obj: dict) -> dict:
        return {**obj, "spec": {"finalizers": ["kubernetes"]}, "status": {"phase": "Active"}}


class PodStrategy(Strategy):
    def __init__(self):
        super().__init__("pods", "Pod", True)

    def field_selector(self, text: str | None) -> FieldSelector:
        return parse_field_selector(text)

    def prepare_create(self, pod: dict) -> dict:
        spec = dict(pod.get("spec") or {})
        spec.setdefault("restartPolicy", "Always")
        spec.setdefault("terminationGracePeriodSeconds", 30)
        spec.setdefault("dnsPolicy", "ClusterFirst")
        spec.setdefault("schedulerName", "default-scheduler")
        spec.setdefault("serviceAccountName", "default")
        spec.setdefault("securityContext", {})
        spec.setdefault("enableServiceLinks", True)
        spec.setdefault("priority", 0)
        spec.setdefault("tolerations", default_tolerations())
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

    def validate_update(self, new: dict, old: dict) -> list[dict]:
        causes = self.validate(new)
        if strip_mutable(new["spec"]) != strip_mutable(old["spec"]):
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


def parse_object_field_selector(text: str | None) -> FieldSelector:
    """Field selectors of kinds with the default conversion: name and namespace only."""
    if text:
        for term in text.split(","):
            field_name = term.replace("!=", "=").split("=", 1)[0]
            if field_name not in GENERIC_FIELDS:
                raise SelectorError(f'"{field_name}" is not a known field selector: only '
                                    f'"metadata.name", "metadata.namespace"')
    return parse_field_selector(text)


GENERIC_FIELDS = ("metadata.name", "metadata.namespace")


def default_container(container: dict) -> dict:
    image = container.get("image", "")
    pull = "Always" if image.endswith(":latest") or ":" not in image.rsplit("/", 1)[-1] else "IfNotPresent"
    return {"imagePullPolicy": pull, "terminationMessagePath": "/dev/termination-log",
            "terminationMessagePolicy": "File", "resources": {}, **container}


def default_tolerations() -> list[dict]:
    """DefaultTolerationSeconds admission: 300 s on not-ready and unreachable nodes."""
    return [{"key": f"node.kubernetes.io/{taint}", "operator": "Exists", "effect": "NoExecute",
             "tolerationSeconds": 300} for taint in ("not-ready", "unreachable")]


def qos_class(containers: list[dict]) -> str:
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    guaranteed = all(r.get("limits") and all(r["limits"].get(k) == v for k, v in
                                             (r.get("requests") or r["limits"]).items())
                     and {"cpu", "memory"} <= set(r["limits"]) for r in resources)
    return "Guaranteed" if guaranteed else "Burstable"


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


__all__ = ["Strategy", "PodStrategy", "NamespaceStrategy", "SelectorError", "TERMINAL_PHASES"]
