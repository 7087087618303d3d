"""``kubesim serve --speed 20``: the timestamps clients see follow the wall clock, never ahead of
it (kubectl describe showed `<invalid>` ages for event times in the future)."""

from __future__ import annotations

import re
from datetime import datetime, timezone

import kubernetes

from scenarios.serve import served_cluster
from tests.serving import api_client, serving, wait_for

STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def stamps(value) -> list[str]:
    """Every RFC 3339 timestamp anywhere in a JSON-like value."""
    if isinstance(value, dict):
        return [s for v in value.values() for s in stamps(v)]
    if isinstance(value, list):
        return [s for v in value for s in stamps(v)]
    return [value] if isinstance(value, str) and STAMP.fullmatch(value) else []


def test_served_timestamps_are_never_ahead_of_the_wall_clock(tmp_path):
    cluster, _ = served_cluster(None, seed=3, speed=20)
    with serving(cluster, speed=20) as server:
        api = kubernetes.client.CoreV1Api(api_client(server, tmp_path))
        pod = {"metadata": {"name": "short", "annotations": {"kubesim.io/run-seconds": "30"}},
               "spec": {"restartPolicy": "Never", "containers": [{"name": "main", "image": "busybox:1.36"}]}}
        api.create_namespaced_pod("default", pod)
        read = lambda: api.read_namespaced_pod("short", "default", _preload_content=False).json()
        wait_for(lambda: read()["status"].get("phase") == "Succeeded", "the pod to finish (1.5 s at 20x)")
        now = datetime.now(timezone.utc)
        events = api.list_namespaced_event("default", _preload_content=False).json()
        found = stamps(read()) + stamps(events)
    assert len(found) >= 6, found
    late = [s for s in found if datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc) > now]
    assert not late, f"timestamps after the wall clock's {now:%H:%M:%S}: {late}"
