"""The Table output kubectl reads: pod status text derived as kube-apiserver's printer derives it
(from pods the simulated kubelet really produced, in virtual time, and from hand-made statuses
for the rarer branches), ages in kubectl's short form, and Accept negotiation."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import kubernetes
import pytest

from fakecluster import FakeCluster
from fakecluster.api.tables import human_duration, pod_status, table, wants_table, watch_line
from helpers import NS, pod_manifest

NOW = datetime(2024, 1, 1, 1, 0, 0, tzinfo=timezone.utc)


def produced(annotations: dict, seconds: float, restart: str = "Never", delete: bool = False) -> dict:
    """A pod as the simulated cluster leaves it ``seconds`` after its creation."""
    cluster = FakeCluster(seed=2)
    api = kubernetes.client.CoreV1Api(cluster.api_client())
    manifest = pod_manifest("p", annotations=annotations, restartPolicy=restart, terminationGracePeriodSeconds=600)

    def scenario():
        api.create_namespaced_pod(NS, manifest)
        cluster.sleep(seconds)
        if delete:
            api.delete_namespaced_pod("p", NS)
            cluster.sleep(1)

    cluster.run(scenario)
    return cluster.pod(NS, "p")


@pytest.mark.parametrize("annotations, seconds, restart, delete, shown", [
    ({"kubesim.io/pull-seconds": "60"}, 5, "Never", False, "ContainerCreating"),
    ({"kubesim.io/image-error": "ErrImagePull"}, 0.5, "Never", False, "ErrImagePull"),
    ({"kubesim.io/image-error": "ErrImagePull"}, 5, "Never", False, "ImagePullBackOff"),
    ({"kubesim.io/image-error": "InvalidImageName"}, 5, "Never", False, "InvalidImageName"),
    ({"kubesim.io/container-error": "CreateContainerConfigError"}, 5, "Never", False, "CreateContainerConfigError"),
    ({"kubesim.io/unschedulable": "true"}, 5, "Never", False, "Pending"),
    ({"kubesim.io/run-seconds": "60"}, 5, "Never", False, "Running"),
    ({"kubesim.io/run-seconds": "2"}, 5, "Never", False, "Completed"),
    ({"kubesim.io/run-seconds": "2", "kubesim.io/exit-code": "3"}, 5, "Never", False, "Error"),
    ({"kubesim.io/run-seconds": "2", "kubesim.io/oom": "true"}, 5, "Never", False, "OOMKilled"),
    ({"kubesim.io/run-seconds": "2"}, 25, "Always", False, "CrashLoopBackOff"),
    ({"kubesim.io/run-seconds": "60", "kubesim.io/stop-seconds": "300"}, 5, "Never", True, "Terminating"),
])
def test_pod_status_text_of_pods_the_simulated_kubelet_produced(annotations, seconds, restart, delete, shown):
    assert pod_status(produced(annotations, seconds, restart, delete))[0] == shown


def test_a_running_pod_s_row_has_every_column_kubectl_prints():
    pod = produced({"kubesim.io/run-seconds": "600"}, 30)
    now = datetime.fromisoformat(pod["metadata"]["creationTimestamp"].replace("Z", "+00:00")) + timedelta(seconds=95)
    result = table({"kind": "PodList", "metadata": {"resourceVersion": "9"}, "items": [pod]}, now)
    assert result["metadata"] == {"resourceVersion": "9"}
    assert [c["name"] for c in result["columnDefinitions"]] == [
        "Name", "Ready", "Status", "Restarts", "Age", "IP", "Node", "Nominated Node", "Readiness Gates"]
    assert [c["priority"] for c in result["columnDefinitions"]] == [0, 0, 0, 0, 0, 1, 1, 1, 1]
    assert result["rows"][0]["cells"] == ["p", "1/1", "Running", "0", "95s", pod["status"]["podIP"],
                                          pod["spec"]["nodeName"], "<none>", "<none>"]


def test_restarts_show_how_long_ago_the_last_one_was():
    pod = produced({"kubesim.io/run-seconds": "2"}, 25, restart="Always")
    status, _, restarts, last = pod_status(pod)
    now = datetime.fromisoformat(last.replace("Z", "+00:00")) + timedelta(seconds=7)
    assert restarts >= 1 and table(pod, now)["rows"][0]["cells"][3] == f"{restarts} (7s ago)"


def made(status: dict, deleted: bool = False, **spec) -> dict:
    meta = {"name": "m", "creationTimestamp": "2024-01-01T00:00:00Z"}
    if deleted:
        meta["deletionTimestamp"] = "2024-01-01T00:30:00Z"
    return {"kind": "Pod", "metadata": meta,
            "spec": {"containers": [{"name": "a"}, {"name": "b"}], **spec}, "status": status}


def test_rarer_branches_init_containers_signals_node_lost_and_gates():
    init = {"initContainers": [{"name": "i1"}, {"name": "i2"}]}
    done = {"state": {"terminated": {"exitCode": 0}}}
    assert pod_status(made({"phase": "Pending", "initContainerStatuses": [done, {"state": {"running": {}}}]},
                           **init))[0] == "Init:1/2"
    assert pod_status(made({"phase": "Pending", "initContainerStatuses": [
        {"state": {"waiting": {"reason": "ErrImagePull"}}}]}, **init))[0] == "Init:ErrImagePull"
    assert pod_status(made({"phase": "Failed", "initContainerStatuses": [
        {"state": {"terminated": {"exitCode": 2}}}]}, **init))[0] == "Init:ExitCode:2"
    assert pod_status(made({"phase": "Running", "containerStatuses": [
        {"state": {"terminated": {"exitCode": 137, "signal": 9}}}]}))[0] == "Signal:9"
    assert pod_status(made({"phase": "Running", "reason": "NodeLost"}, deleted=True))[0] == "Unknown"
    running = {"ready": True, "state": {"running": {}}}
    gated = made({"phase": "Running", "containerStatuses": [running, running],
                  "conditions": [{"type": "Ready", "status": "True"}, {"type": "www.example.com/gate", "status": "True"}]},
                 readinessGates=[{"conditionType": "www.example.com/gate"}, {"conditionType": "other"}])
    cells = table(gated, NOW)["rows"][0]["cells"]
    assert cells[1:3] == ["2/2", "Running"] and cells[8] == "1/2" and cells[5] == "<none>"


@pytest.mark.parametrize("seconds, text", [
    (-5, "<invalid>"), (-1, "0s"), (0, "0s"), (119, "119s"), (120, "2m"), (201, "3m21s"), (600, "10m"),
    (10_799, "179m"), (3 * 3600, "3h"), (5 * 3600 + 180, "5h3m"), (30 * 3600, "30h"), (50 * 3600, "2d2h"),
    (9 * 86400, "9d"), (800 * 86400, "2y70d"), (9 * 365 * 86400, "9y"),
])
def test_ages_are_kubectl_s_short_human_durations(seconds, text):
    assert human_duration(seconds) == text


def test_table_is_served_only_when_asked_for_and_watch_events_keep_their_type():
    assert wants_table("application/json;as=Table;v=v1;g=meta.k8s.io,application/json") == "meta.k8s.io/v1"
    assert wants_table("application/json;as=Table;v=v1beta1;g=meta.k8s.io") == "meta.k8s.io/v1beta1"
    assert wants_table("application/json") is None and wants_table("application/json;as=Table;v=v2;g=x") is None
    line = b'{"type":"MODIFIED","object":{"kind":"Namespace","metadata":{"name":"n","creationTimestamp":"2024-01-01T00:00:00Z"},"status":{"phase":"Active"}}}\n'
    event = json.loads(watch_line(line, NOW, "None"))
    assert event["type"] == "MODIFIED" and event["object"]["rows"] == [{"cells": ["n", "Active", "60m"]}]
    error = b'{"type":"ERROR","object":{"kind":"Status","code":410}}\n'
    assert watch_line(error, NOW) == error
