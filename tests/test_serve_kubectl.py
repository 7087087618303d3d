"""kubectl, as found on the machine, against ``kubesim serve``: get (table, -o json, -o yaml,
-o wide, -w, selectors, --all-namespaces), describe, create -f, apply -f, label and delete. The tests
skip when kubectl is missing, and fail then when KUBESIM_REQUIRE_KUBECTL=1 (CI sets it)."""

from __future__ import annotations

import json
import queue
import re
import threading

import pytest
import yaml

from serving import (DEADLINE, RUNS_LONG, Kubectl, find_kubectl, new_cluster, phase, pod, serving, table, wait_for,
                     wait_pod)

@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    binary = find_kubectl()
    home = tmp_path_factory.mktemp("kubectl-home")
    with serving(new_cluster(namespaces=("default", "kube-system", "watching"))) as server:
        yield server, Kubectl(binary, server.write_kubeconfig(home / "kubeconfig"), home)


def waiting_reason(p: dict) -> str:
    statuses = (p.get("status") or {}).get("containerStatuses") or [{}]
    return ((statuses[0].get("state") or {}).get("waiting") or {}).get("reason", "")


def test_create_then_get_pods_prints_the_server_s_table(cluster):
    server, kubectl = cluster
    assert kubectl("create", "-f", kubectl.manifest("alpha", {"app": "web"})).strip() == "pod/alpha created"
    wait_pod(server, "alpha", lambda p: phase(p) == "Running", "Running")
    rows = table(kubectl("get", "pods"))
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    alpha = next(row for row in rows if row[0] == "alpha")
    assert alpha[1:4] == ["1/1", "Running", "0"] and re.fullmatch(r"\d+s|\d+m\d*s?", alpha[4])


def test_get_pods_wide_json_and_yaml(cluster):
    server, kubectl = cluster
    kubectl("create", "-f", kubectl.manifest("beta", {"app": "web"}))
    running = wait_pod(server, "beta", lambda p: phase(p) == "Running", "Running")
    rows = table(kubectl("get", "pods", "-o", "wide"))
    assert rows[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE", "NOMINATED NODE", "READINESS GATES"]
    beta = next(row for row in rows if row[0] == "beta")
    assert beta[5:] == [running["status"]["podIP"], running["spec"]["nodeName"], "<none>", "<none>"]
    listed = json.loads(kubectl("get", "pods", "-o", "json"))
    item = next(i for i in listed["items"] if i["metadata"]["name"] == "beta")
    assert listed["kind"] == "List" and item["status"]["phase"] == "Running" and item["metadata"]["labels"] == {"app": "web"}
    one = yaml.safe_load(kubectl("get", "pod", "beta", "-o", "yaml"))
    assert one["kind"] == "Pod" and one["spec"]["nodeName"] == running["spec"]["nodeName"]
    assert one["metadata"]["uid"] == running["metadata"]["uid"]


def test_apply_creates_then_patches_and_label_adds_a_label(cluster):
    server, kubectl = cluster
    assert kubectl("apply", "-f", kubectl.manifest("gamma", {"app": "api"})).strip() == "pod/gamma created"
    changed = kubectl.manifest("gamma", {"app": "api", "tier": "backend"})
    assert kubectl("apply", "-f", changed).strip() == "pod/gamma configured"   # a strategic merge PATCH
    applied = pod(server, "gamma")
    assert applied["metadata"]["labels"] == {"app": "api", "tier": "backend"}
    assert "kubectl.kubernetes.io/last-applied-configuration" in applied["metadata"]["annotations"]
    assert kubectl("label", "pod", "gamma", "color=blue").strip() == "pod/gamma labeled"
    assert pod(server, "gamma")["metadata"]["labels"]["color"] == "blue"


def test_label_selectors_field_selectors_and_all_namespaces(cluster):
    server, kubectl = cluster
    kubectl("create", "-f", kubectl.manifest("delta", {"app": "db", "tier": "data"}))
    kubectl("create", "-f", kubectl.manifest("stuck", {"app": "db"}, {"kubesim.io/unschedulable": "true"}))
    kubectl("create", "-n", "kube-system", "-f", kubectl.manifest("sys", {"app": "dns"}))
    wait_pod(server, "delta", lambda p: phase(p) == "Running", "Running")
    names = lambda output: sorted(row[0] for row in table(output)[1:])  # noqa: E731
    assert names(kubectl("get", "pods", "-l", "app=db")) == ["delta", "stuck"]
    assert names(kubectl("get", "pods", "-l", "app in (db),tier")) == ["delta"]
    assert names(kubectl("get", "pods", "-l", "app=db,!tier")) == ["stuck"]
    pending = table(kubectl("get", "pods", "--field-selector", "status.phase=Pending"))
    assert [row[0] for row in pending[1:]] == ["stuck"] and pending[1][2] == "Pending"
    everywhere = table(kubectl("get", "pods", "--all-namespaces", "-l", "app in (db,dns)"))
    assert everywhere[0][:2] == ["NAMESPACE", "NAME"]
    assert sorted((row[0], row[1]) for row in everywhere[1:]) == [
        ("default", "delta"), ("default", "stuck"), ("kube-system", "sys")]


def test_delete_pod_waits_until_the_pod_is_gone(cluster):
    server, kubectl = cluster
    kubectl("create", "-f", kubectl.manifest("epsilon"))
    wait_pod(server, "epsilon", lambda p: phase(p) == "Running", "Running")
    assert kubectl("delete", "pod", "epsilon").strip() == 'pod "epsilon" deleted'
    assert pod(server, "epsilon") is None   # graceful deletion ran its course before kubectl returned


def test_status_column_words_pod_states_as_kubectl_does(cluster):
    server, kubectl = cluster
    pulling = lambda p: waiting_reason(p) in ("ErrImagePull", "ImagePullBackOff")  # noqa: E731 (alternating)
    cases = {
        "pulling": ({"kubesim.io/pull-seconds": "3600"}, "Always", lambda p: waiting_reason(p) == "ContainerCreating"),
        "badimage": ({"kubesim.io/image-error": "ErrImagePull"}, "Always", pulling),
        "finished": ({"kubesim.io/run-seconds": "1"}, "Never", lambda p: phase(p) == "Succeeded"),
        "oomed": ({"kubesim.io/oom": "true", "kubesim.io/run-seconds": "1"}, "Never", lambda p: phase(p) == "Failed"),
        "stopping": ({"kubesim.io/stop-seconds": "3600", **RUNS_LONG}, "Always", lambda p: phase(p) == "Running"),
    }
    for name, (steering, restart, _) in cases.items():
        kubectl("create", "-f", kubectl.manifest(name, {"case": "status"}, steering, restart, grace=3600))
    for name, (_, _, ready) in cases.items():
        wait_pod(server, name, ready, "its state")
    kubectl("delete", "pod", "stopping", "--wait=false")
    wait_pod(server, "stopping", lambda p: p["metadata"].get("deletionTimestamp"), "marked for deletion")
    shown = {row[0]: row[2] for row in table(kubectl("get", "pods", "-l", "case=status"))[1:]}
    assert shown.pop("badimage") in ("ErrImagePull", "ImagePullBackOff")
    assert shown == {"pulling": "ContainerCreating", "finished": "Completed", "oomed": "OOMKilled",
                     "stopping": "Terminating"}


def test_describe_pod_shows_why_it_is_stuck_pending(cluster):
    server, kubectl = cluster
    kubectl("create", "-f", kubectl.manifest("unplaced", {"case": "describe"}, {"kubesim.io/unschedulable": "true"}))
    wait_for(lambda: server.call(lambda: server.cluster.events(involved="unplaced")), "a FailedScheduling event")
    described = kubectl("describe", "pod", "unplaced")
    assert re.search(r"^Status:\s+Pending$", described, re.MULTILINE)
    events = described[described.index("Events:"):]
    assert re.search(r"Warning\s+FailedScheduling\s+.*default-scheduler\s+0/\d+ nodes are available", events), events


def test_get_pods_watch_prints_each_change_as_it_happens(cluster):
    server, kubectl = cluster
    watcher = kubectl.popen("get", "pods", "-n", "watching", "-w")
    lines: queue.Queue = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put(line.rstrip("\n")) for line in watcher.stdout], daemon=True)
    reader.start()

    def next_row(name: str, status: str) -> list[str]:
        while True:
            try:
                row = re.split(r"\s{2,}", lines.get(timeout=DEADLINE).strip())
            except queue.Empty:
                raise AssertionError(f"kubectl get pods -w printed no {status} row for {name}") from None
            if row[0] == name and row[2] == status:
                return row

    try:
        wait_for(lambda: server.call(lambda: sum(1 for s in server.cluster.server.stores.values()
                                                 for _ in s.watchers.all())) >= 1, "kubectl's watch")
        kubectl("create", "-n", "watching", "-f", kubectl.manifest("zeta"))
        assert next_row("zeta", "Pending")[1] == "0/1"
        assert next_row("zeta", "Running")[1] == "1/1"
        kubectl("delete", "pod", "-n", "watching", "zeta", "--wait=false")
        next_row("zeta", "Terminating")
    finally:
        watcher.terminate()
        watcher.wait(DEADLINE)
        reader.join(DEADLINE)
