"""Other writers: tenants whose pods come and go beside the executor's.

On a real cluster the executor is never alone: other teams' pods are created, run and deleted,
so the global resourceVersion moves on while the executor's own pods sit still, the watch cache
fills with changes it does not care about, and a resume point it kept can expire. A world where
only the executor writes cannot tell a watcher that re-lists after a 410 from one that dies and
replays everything; churn can.

Tenant pods live in their own namespace, ask for almost nothing (they never crowd out the
executor's pods) and are deleted a while after they finish, as a controller would.
"""

from __future__ import annotations

import json
from dataclasses import dataclass


@dataclass(frozen=True)
class Churn:
    """``pods_per_second`` tenant pods created in ``namespace``, each running ``run_seconds`` and
    deleted ``keep_seconds`` after it ends, from ``start`` to ``end`` (virtual seconds)."""

    pods_per_second: float = 1.0
    namespace: str = "tenant"
    run_seconds: float = 10.0
    keep_seconds: float = 5.0
    start: float = 0.0
    end: float | None = None

    def __post_init__(self):
        if not self.pods_per_second > 0:
            raise ValueError(f"churn needs pods_per_second > 0, not {self.pods_per_second!r}")
        if self.run_seconds < 0 or self.keep_seconds < 0:
            raise ValueError("churn run_seconds and keep_seconds must be >= 0")
        if self.end is not None and self.end < self.start:
            raise ValueError(f"churn ends ({self.end:g}s) before it starts ({self.start:g}s)")


def run_churn(cluster, churn: Churn) -> None:
    """Start the tenant: a simulated process creating pods, and deletions timed after each ends.

    ``cluster`` is a FakeCluster (its ``request``, ``at``, ``spawn``, ``sleep``, ``create_namespace``)."""
    cluster.create_namespace(churn.namespace)
    gap = 1.0 / churn.pods_per_second
    base = f"/api/v1/namespaces/{churn.namespace}/pods"

    def tenant():
        serial = 0
        if churn.start > cluster.now:
            cluster.sleep(churn.start - cluster.now)
        while churn.end is None or cluster.now < churn.end:
            serial += 1
            name = f"tenant-{serial}"
            reply = cluster.request("POST", base, json.dumps(tenant_pod(name, churn)).encode(),
                                    {"Content-Type": "application/json"})
            if reply.status == 201:
                delete_after = churn.run_seconds + churn.keep_seconds + 1.0   # + starting up
                cluster.at(cluster.now + delete_after, lambda name=name: cluster.request("DELETE", f"{base}/{name}"))
            cluster.sleep(gap)

    cluster.spawn(tenant, name=f"tenant[{churn.namespace}]")


def tenant_pod(name: str, churn: Churn) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "labels": {"app": "tenant"},
                         "annotations": {"kubesim.io/run-seconds": str(churn.run_seconds)}},
            "spec": {"restartPolicy": "Never",
                     "containers": [{"name": "main", "image": "busybox:1.36",
                                     "resources": {"requests": {"cpu": "1m", "memory": "1Mi"}}}]}}
