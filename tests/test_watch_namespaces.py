"""A namespaced watch shows its own namespace only, also when it resumes from the watch cache:
there every change of the resource is offered to it, whatever the namespace."""

from __future__ import annotations

import pytest
from kubernetes import watch

from helpers import LONG_RUN, new_world, pod_manifest

NAMESPACES = ("a", "b")


@pytest.mark.parametrize("selector", [None, "app=web"])
def test_a_resumed_namespaced_watch_replays_only_its_namespace(selector):
    cluster, api = new_world()
    for namespace in NAMESPACES:
        cluster.create_namespace(namespace)

    def main():
        start = api.list_namespaced_pod("a").metadata.resource_version
        for namespace in NAMESPACES:
            api.create_namespaced_pod(namespace, pod_manifest(f"web-{namespace}", labels={"app": "web"},
                                                              annotations=LONG_RUN))
        cluster.sleep(1)  # bound and running: MODIFIED changes in both namespaces
        for namespace in NAMESPACES:
            api.delete_namespaced_pod(f"web-{namespace}", namespace, grace_period_seconds=0)
        selectors = {"label_selector": selector} if selector else {}
        events = watch.Watch().stream(api.list_namespaced_pod, "a", resource_version=start,
                                      timeout_seconds=5, **selectors)
        return [(e["type"], e["raw_object"]["metadata"]["namespace"]) for e in events]

    events = cluster.run(main)
    assert {namespace for _, namespace in events} == {"a"}
    assert events[0][0] == "ADDED" and events[-1][0] == "DELETED" and len(events) > 2
