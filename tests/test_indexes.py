"""Lists and watch fan-out cost what matches, not what is stored (indexes, not scans).

Work is counted, not timed: the fake's selector checks and watcher offers are spied on while the
real client lists and watches, with many more pods stored than match.
"""

from __future__ import annotations

import kubernetes
import pytest
from kubernetes import watch

from fakecluster import FakeCluster
from fakecluster.api.selectors import LabelSelector
from fakecluster.api.watch import Watcher

NS = "default"
PODS, GROUPS = 600, 60  # ten pods in each group


def pod(index: int) -> dict:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": f"p-{index:04d}", "labels": {"group": f"g{index % GROUPS}", "app": "load"}},
            "spec": {"containers": [{"name": "base", "image": "busybox:1.36"}], "restartPolicy": "Never"}}


@pytest.fixture
def loaded():
    # no node has room: the pods stay Pending, so the only writes are the test's own
    cluster = FakeCluster(seed=3, nodes=1, node_pods=0)
    api = kubernetes.client.CoreV1Api(cluster.api_client())

    def create_all():
        for index in range(PODS):
            api.create_namespaced_pod(NS, pod(index))

    cluster.run(create_all)
    cluster.advance(1)
    return cluster, api


def count_calls(monkeypatch, owner, name: str) -> list:
    """Record every call of ``owner.name`` (our own code, not the client's) and still make it."""
    calls, original = [], getattr(owner, name)

    def spy(self, *args):
        calls.append(self)
        return original(self, *args)

    monkeypatch.setattr(owner, name, spy)
    return calls


def test_a_selector_list_checks_only_the_pods_its_label_can_match(loaded, monkeypatch):
    cluster, api = loaded
    checks = count_calls(monkeypatch, LabelSelector, "matches")
    listed = cluster.run(lambda: api.list_namespaced_pod(NS, label_selector="group=g7,app=load"))
    assert sorted(p.metadata.name for p in listed.items) == [f"p-{i:04d}" for i in range(7, PODS, GROUPS)]
    assert len(checks) == PODS // GROUPS  # the g7 bucket only, not all 600 stored pods


def test_a_change_is_offered_only_to_watchers_its_labels_can_match(loaded, monkeypatch):
    cluster, api = loaded
    seen: dict[str, list] = {f"g{g}": [] for g in range(GROUPS)}

    since = cluster.run(lambda: api.list_namespaced_pod(NS, limit=1).metadata.resource_version)

    def follow(group: str):
        stream = watch.Watch().stream(api.list_namespaced_pod, NS, label_selector=f"group={group}",
                                      resource_version=since, timeout_seconds=30)
        seen[group].extend((e["type"], e["object"].metadata.name) for e in stream)

    for group in seen:
        cluster.spawn(follow, group)
    cluster.advance(1)  # every watch is open
    offers = count_calls(monkeypatch, Watcher, "offer")
    cluster.run(lambda: api.patch_namespaced_pod("p-0007", NS, {"metadata": {"annotations": {"a": "b"}}}))
    cluster.advance(40)

    assert seen["g7"] == [("MODIFIED", "p-0007")]
    assert all(not events for group, events in seen.items() if group != "g7")
    assert len(offers) == 1  # one of the 60 watchers was asked, not all of them
