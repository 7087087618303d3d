"""The namespace controller: empties a Terminating namespace, then removes it.

A DELETE of a namespace only marks it (deletionTimestamp, phase Terminating; see the API
server's NamespaceStrategy). As kube-controller-manager's namespace controller does, this one
then deletes what the namespace holds: its Events at once, its pods gracefully (each goes
through its kubelet's termination), and reports progress in the namespace's conditions. When
the last pod is gone it removes the ``kubernetes`` finalizer and with it the namespace. A pod
that cannot finish (its node is lost) keeps the namespace Terminating, as on a real cluster.
"""

from __future__ import annotations

from typing import Callable

import simpy

from ..api.store import DELETED, MODIFIED, Change, ResourceStore
from ..kernel.engine import ModelTimer

# (type, reason, message) of the conditions the controller keeps while deleting, when all is well
# (pkg/controller/namespace/deletion/status_condition_utils.go)
DELETION_CONDITIONS = (
    ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered", "All resources successfully discovered"),
    ("NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions", "All legacy kube types successfully parsed"),
    ("NamespaceDeletionContentFailure", "ContentDeleted",
     "All content successfully deleted, may be waiting on finalization"),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "ContentHasNoFinalizers", "All content-preserving finalizers have been removed"),
)


class NamespaceController:
    def __init__(self, env: simpy.Environment, namespaces: ResourceStore, pods: ResourceStore,
                 events: ResourceStore, timestamp: Callable[..., str], delete_pod: Callable[[dict], None],
                 flush_events: Callable[[], None] = lambda: None):
        self.env, self.namespaces, self.pods, self.events = env, namespaces, pods, events
        self.timestamp, self.delete_pod, self.flush_events = timestamp, delete_pod, flush_events
        self.terminating: set[str] = set()
        self._checks: set[str] = set()   # namespaces with a look already queued
        namespaces.listeners.append(self._on_namespace)
        pods.listeners.append(self._on_pod)

    def is_terminating(self, namespace: str) -> bool:
        return namespace in self.terminating

    def _on_namespace(self, change: Change) -> None:
        meta = change.obj["metadata"]
        if change.type == MODIFIED and meta.get("deletionTimestamp") \
                and not change.prev["metadata"].get("deletionTimestamp"):
            self.terminating.add(meta["name"])
            ModelTimer(self.env, 0, lambda _, name=meta["name"]: self._empty(name))
        elif change.type == DELETED:
            self.terminating.discard(meta["name"])

    def _on_pod(self, change: Change) -> None:
        if change.type == DELETED and self.terminating:
            namespace = change.obj["metadata"]["namespace"]
            if namespace in self.terminating and namespace not in self._checks:
                self._checks.add(namespace)
                ModelTimer(self.env, 0, lambda _: self._check(namespace))

    def _empty(self, name: str) -> None:
        """Delete the namespace's content: Events now, pods gracefully."""
        if name not in self.terminating:
            return
        self.flush_events()   # Events recorded but not yet written go with the rest
        for event in sorted(self.events.by_namespace.get(name, {}).values(), key=lambda e: e["metadata"]["name"]):
            self.events.remove(name, event["metadata"]["name"])
        for pod in sorted(self.pods.by_namespace.get(name, {}).values(), key=lambda p: p["metadata"]["name"]):
            if not pod["metadata"].get("deletionTimestamp"):
                self.delete_pod(pod)
        self._check(name)

    def _check(self, name: str) -> None:
        """Remove the namespace once it holds nothing; until then say what remains."""
        self._checks.discard(name)
        if name not in self.terminating or self.namespaces.get("", name) is None:
            return
        remaining = len(self.pods.by_namespace.get(name, ()))
        if remaining:
            self.namespaces.update("", name, lambda ns: with_conditions(ns, remaining, self.timestamp()))
            return
        self.namespaces.remove("", name, finalized(self.namespaces.get("", name), self.timestamp()))


def with_conditions(namespace: dict, pods_remaining: int, when: str) -> dict:
    """The deletion conditions, with NamespaceContentRemaining saying how many pods are left."""
    old = {c["type"]: c for c in namespace.get("status", {}).get("conditions") or []}
    conditions = []
    for kind, reason, message in DELETION_CONDITIONS:
        status = "False"
        if kind == "NamespaceContentRemaining" and pods_remaining:
            status, reason = "True", "SomeResourcesRemain"
            message = f"Some resources are remaining: pods has {pods_remaining} resource instances"
        before = old.get(kind)
        since = before["lastTransitionTime"] if before and before["status"] == status else when
        conditions.append({"type": kind, "status": status, "lastTransitionTime": since,
                           "reason": reason, "message": message})
    if conditions == list(old.values()):
        return namespace
    return {**namespace, "status": {**namespace.get("status", {}), "conditions": conditions}}


def finalized(namespace: dict, when: str) -> dict:
    """The namespace's last state: content gone, the ``kubernetes`` finalizer removed."""
    namespace = with_conditions(namespace, 0, when)
    return {**namespace, "spec": {**namespace.get("spec", {}), "finalizers": []}}
