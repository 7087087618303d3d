"""kubectl against ``kubesim serve`` beyond create/get/delete: namespace lifecycle, nodes (cordon,
drain, taints, labels, create and delete), events, logs, field validation, explain, auth can-i and
cluster-info. Skips without kubectl, fails then when KUBESIM_REQUIRE_KUBECTL=1 (CI sets it)."""

from __future__ import annotations

import json
import re

import pytest

from fakecluster.api.schema import kind_schema
from serving import Kubectl, find_kubectl, new_cluster, phase, pod, serving, wait_for, wait_pod

SLOW_STOP = {"kubesim.io/run-seconds": "3600", "kubesim.io/stop-seconds": "60"}   # 3 s of wall time at 20x


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    binary = find_kubectl()
    home = tmp_path_factory.mktemp("kubectl-home")
    with serving(new_cluster(namespaces=("default", "kube-system", "kube-public"))) as server:
        yield server, Kubectl(binary, server.write_kubeconfig(home / "kubeconfig"), home)


def namespace(server, name: str) -> dict | None:
    return server.call(lambda: server.cluster.server.stores["namespaces"].get("", name))


# -- namespaces ------------------------------------------------------------------------------------

def test_kubectl_cannot_delete_the_immortal_namespaces(cluster):
    server, kubectl = cluster
    for name in ("default", "kube-system", "kube-public"):
        error = kubectl.fails("delete", "namespace", name)
        assert f'Error from server (Forbidden): namespaces "{name}" is forbidden: this namespace may not be deleted' \
            in error
        assert namespace(server, name)["status"]["phase"] == "Active"


def test_kubectl_delete_namespace_waits_while_its_pods_terminate(cluster):
    server, kubectl = cluster
    assert kubectl("create", "namespace", "doomed").strip() == "namespace/doomed created"
    kubectl("create", "-n", "doomed", "-f", kubectl.manifest("inside", annotations=SLOW_STOP))
    wait_pod(server, "inside", lambda p: phase(p) == "Running", "Running", namespace="doomed")
    deleting = kubectl.popen("delete", "namespace", "doomed")
    wait_for(lambda: (namespace(server, "doomed") or {}).get("status", {}).get("phase") == "Terminating",
             "the namespace to go Terminating")
    refused = kubectl.fails("create", "-n", "doomed", "-f", kubectl.manifest("late"))
    assert 'pods "late" is forbidden: unable to create new content in namespace doomed because it is being ' \
           'terminated' in refused
    out, _ = deleting.communicate(timeout=60)
    assert deleting.returncode == 0 and out.strip() == 'namespace "doomed" deleted'
    assert namespace(server, "doomed") is None and pod(server, "inside", "doomed") is None


# -- nodes -----------------------------------------------------------------------------------------

def write(kubectl: Kubectl, name: str, text: str) -> str:
    path = kubectl.home / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def pinned_pod(kubectl: Kubectl, name: str, spec: str) -> str:
    """A long-running pod manifest with extra spec lines (already indented by two spaces)."""
    return write(kubectl, f"{name}.yaml", f"""\
apiVersion: v1
kind: Pod
metadata:
  name: {name}
  annotations: {{"kubesim.io/run-seconds": "3600", "kubesim.io/stop-seconds": "1"}}
spec:
{spec}
  containers:
  - name: main
    image: busybox:1.36
""")


def scheduling_message(p: dict) -> str:
    return next((c.get("message", "") for c in p["status"].get("conditions", []) if c["type"] == "PodScheduled"), "")


def test_cordon_drain_and_uncordon_steer_the_scheduler(cluster):
    server, kubectl = cluster
    kubectl("create", "-f", pinned_pod(kubectl, "drained", "  nodeName: node-3"))
    wait_pod(server, "drained", lambda p: phase(p) == "Running", "Running")
    assert kubectl("cordon", "node-3").strip() == "node/node-3 cordoned"
    drained = kubectl("drain", "node-3", "--force", "--timeout=60s")
    assert "pod/drained deleted" in drained and "node/node-3 drained" in drained
    assert pod(server, "drained") is None
    nodes = {row[0]: row[1] for row in kubectl.table("get", "nodes")[1:]}
    assert nodes["node-3"] == "Ready,SchedulingDisabled" and nodes["node-1"] == "Ready"
    kubectl("create", "-f", pinned_pod(kubectl, "wants-3", "  nodeSelector: {kubernetes.io/hostname: node-3}"))
    waiting = wait_pod(server, "wants-3", scheduling_message, "a PodScheduled message")
    assert scheduling_message(waiting).startswith(
        "0/3 nodes are available: 1 node(s) were unschedulable, 2 node(s) didn't match Pod's node affinity/selector.")
    assert kubectl("uncordon", "node-3").strip() == "node/node-3 uncordoned"
    running = wait_pod(server, "wants-3", lambda p: phase(p) == "Running", "Running after uncordon")
    assert running["spec"]["nodeName"] == "node-3"


def test_taints_and_labels_set_with_kubectl_steer_where_pods_go(cluster):
    server, kubectl = cluster
    assert kubectl("taint", "nodes", "node-1", "node-2", "node-3", "dedicated=gpu:NoSchedule").split() == [
        "node/node-1", "tainted", "node/node-2", "tainted", "node/node-3", "tainted"]
    try:
        kubectl("create", "-f", pinned_pod(kubectl, "untolerant", "  nodeSelector: {disk: ssd}"))
        kubectl("create", "-f", pinned_pod(kubectl, "tolerant", """\
  nodeSelector: {disk: ssd}
  tolerations: [{key: dedicated, operator: Equal, value: gpu, effect: NoSchedule}]"""))
        wait_pod(server, "untolerant", scheduling_message, "a PodScheduled message")
        described = kubectl("describe", "pod", "untolerant")
        assert "0/3 nodes are available: 3 node(s) had untolerated taint {dedicated: gpu}." in described
        assert kubectl("label", "node", "node-2", "disk=ssd").strip() == "node/node-2 labeled"
        tolerant = wait_pod(server, "tolerant", lambda p: phase(p) == "Running", "Running once node-2 has the label")
        assert tolerant["spec"]["nodeName"] == "node-2"
        assert pod(server, "untolerant")["spec"].get("nodeName") is None
    finally:
        kubectl("taint", "nodes", "node-1", "node-2", "node-3", "dedicated-")
        kubectl("delete", "pod", "untolerant", "tolerant", "--wait=false")


def test_nodes_created_and_deleted_with_kubectl(cluster):
    server, kubectl = cluster
    node = write(kubectl, "node.yaml", """\
apiVersion: v1
kind: Node
metadata:
  name: extra
  labels: {pool: extra}
status:
  capacity: {cpu: "4", memory: 16Gi, pods: "20"}
""")
    assert kubectl("create", "-f", node).strip() == "node/extra created"
    kubectl("create", "-f", pinned_pod(kubectl, "on-extra", "  nodeSelector: {pool: extra}"))
    running = wait_pod(server, "on-extra", lambda p: phase(p) == "Running", "Running on the new node")
    assert running["spec"]["nodeName"] == "extra"
    rows = {row[0]: row[1] for row in kubectl.table("get", "nodes")[1:]}
    assert rows["extra"] == "Ready"
    assert kubectl("delete", "node", "extra").strip() == 'node "extra" deleted'
    wait_for(lambda: pod(server, "on-extra") is None, "the pod of the deleted node to be garbage-collected")


# -- patches -------------------------------------------------------------------------------------

def test_kubectl_json_patch_that_does_not_apply_reads_as_on_kubernetes(cluster):
    server, kubectl = cluster
    kubectl("create", "-f", kubectl.manifest("patched", {"app": "web"}))
    error = kubectl.fails("patch", "pod", "patched", "--type=json",
                          "-p", '[{"op": "test", "path": "/metadata/labels/app", "value": "db"}]')
    assert error.strip() == "The request is invalid: the server rejected our request due to an error in our request"
    assert kubectl("patch", "pod", "patched", "--type=json",
                   "-p", '[{"op": "replace", "path": "/metadata/labels/app", "value": "db"}]').strip() == \
        "pod/patched patched"
    assert pod(server, "patched")["metadata"]["labels"] == {"app": "db"}


# -- field validation ----------------------------------------------------------------------------

def test_kubectl_s_strict_field_validation_refuses_unknown_fields_and_warn_drops_them(cluster):
    server, kubectl = cluster
    typo = write(kubectl, "typo.yaml", """\
apiVersion: v1
kind: Pod
metadata: {name: typo}
spec:
  restartPolicy: Never
  containers:
  - {name: main, image: busybox:1.36, imagePullPolicyy: Always}
""")
    error = kubectl.fails("create", "-f", typo)
    assert f'Error from server (BadRequest): error when creating "{typo}": Pod in version "v1" cannot be handled ' \
           'as a Pod: strict decoding error: unknown field "spec.containers[0].imagePullPolicyy"' in error
    assert pod(server, "typo") is None
    warned = kubectl.run("create", "--validate=warn", "-f", typo)
    assert warned.returncode == 0 and warned.stdout.strip() == "pod/typo created"
    assert 'Warning: unknown field "spec.containers[0].imagePullPolicyy"' in warned.stderr
    assert "imagePullPolicyy" not in pod(server, "typo")["spec"]["containers"][0]


# -- logs, exec ------------------------------------------------------------------------------------

def test_kubectl_logs_follow_tail_timestamps_and_container(cluster):
    server, kubectl = cluster
    kubectl("create", "-f", kubectl.manifest("talker", annotations={"kubesim.io/run-seconds": "40"}, restart="Never"))
    wait_pod(server, "talker", lambda p: phase(p) == "Running", "Running")
    started = "kubesim: container main started (busybox:1.36); the behaviour model runs it for 40s"
    assert kubectl("logs", "talker").splitlines() == [started]
    followed = kubectl("logs", "-f", "talker")           # returns when the container ends (2 s of wall time)
    assert followed.splitlines() == [started, "kubesim: finished (exit code 0)"]
    assert kubectl("logs", "talker", "--tail=1", "-c", "main").splitlines() == ["kubesim: finished (exit code 0)"]
    finished = pod(server, "talker")["status"]["containerStatuses"][0]["state"]["terminated"]
    assert kubectl("logs", "talker", "--timestamps").splitlines() == [
        f"{finished['startedAt']} {started}", f"{finished['finishedAt']} kubesim: finished (exit code 0)"]


def test_kubectl_exec_attach_and_port_forward_are_told_kubesim_does_not_serve_them(cluster):
    server, kubectl = cluster
    kubectl("create", "-f", kubectl.manifest("shell"))
    wait_pod(server, "shell", lambda p: phase(p) == "Running", "Running")
    assert "Error from server (MethodNotAllowed): kubesim does not serve pods/exec: pod \"shell\" is simulated" in \
        kubectl.fails("exec", "shell", "--", "ls")
    assert "kubesim does not serve pods/attach" in kubectl.fails("attach", "shell")
    assert "kubesim does not serve pods/portforward" in kubectl.fails("port-forward", "pod/shell", "0:80")


# -- events ----------------------------------------------------------------------------------------

def test_describe_pod_and_kubectl_events_show_the_pod_s_normal_events(cluster):
    server, kubectl = cluster
    kubectl("create", "-f", kubectl.manifest("narrated"))
    running = wait_pod(server, "narrated", lambda p: phase(p) == "Running", "Running")
    node = running["spec"]["nodeName"]
    described = kubectl("describe", "pod", "narrated")
    rows = [line.split(None, 4) for line in described[described.index("Events:"):].splitlines()[3:] if line.strip()]
    assert [(row[0], row[1], row[3], row[4]) for row in rows] == [
        ("Normal", "Scheduled", "default-scheduler", f"Successfully assigned default/narrated to {node}"),
        ("Normal", "Pulled", "kubelet", 'Container image "busybox:1.36" already present on machine'),
        ("Normal", "Created", "kubelet", "Created container main"),
        ("Normal", "Started", "kubelet", "Started container main")]
    if kubectl.run("events", "--help").returncode == 0:   # kubectl events came in 1.26
        listed = kubectl.table("events", "--for", "pod/narrated")
        assert [row[2] for row in listed[1:]] == ["Scheduled", "Pulled", "Created", "Started"]


# -- explain, auth can-i, cluster-info -------------------------------------------------------------

def kubectl_minor(kubectl: Kubectl) -> int:
    version = json.loads(kubectl("version", "--client", "-o", "json"))["clientVersion"]
    return int("".join(ch for ch in version["minor"] if ch.isdigit()))


def test_kubectl_explain_reads_the_pod_schema_generated_from_the_client_s_models(cluster):
    server, kubectl = cluster
    if kubectl_minor(kubectl) < 27:
        pytest.skip("kubectl before 1.27 explains from OpenAPI v2, which kubesim serves without schemas")
    explained = kubectl("explain", "pods")
    assert "KIND:       Pod" in explained and "Kind is a string value representing the REST resource" in explained
    if kind_schema("Pod").description:   # the 37.x models describe their types, the 36.x ones do not
        assert "Pod is a collection of containers that can run on a host." in explained
    assert re.search(r"^  spec\t<PodSpec>$", explained, re.MULTILINE)
    nested = kubectl("explain", "pods.spec.containers.resources")
    assert "FIELD: resources <ResourceRequirements>" in nested
    assert re.search(r"^  requests\t<map\[string\]string>$", nested, re.MULTILINE)
    assert "restartPolicy\t<string>" in kubectl("explain", "pod.spec")


def test_kubectl_auth_can_i_says_yes_to_everything(cluster):
    server, kubectl = cluster
    assert kubectl("auth", "can-i", "create", "pods").strip() == "yes"
    assert kubectl("auth", "can-i", "delete", "nodes").strip() == "yes"
    listed = kubectl.table("auth", "can-i", "--list")
    assert listed[0] == ["Resources", "Non-Resource URLs", "Resource Names", "Verbs"] and listed[1][0] == "*.*"


def test_kubectl_cluster_info_prints_the_server(cluster):
    server, kubectl = cluster
    printed = re.sub(r"\x1b\[[0-9;]*m", "", kubectl("cluster-info"))   # (kubectl colours it)
    assert printed.splitlines()[0] == f"Kubernetes control plane is running at {server.url}"


def test_kubectl_over_https_is_told_the_server_speaks_http(cluster):
    server, kubectl = cluster
    error = kubectl.fails("--server", server.url.replace("http://", "https://"), "--insecure-skip-tls-verify",
                          "--request-timeout=10s", "get", "pods")
    assert "server gave HTTP response to HTTPS client" in error
