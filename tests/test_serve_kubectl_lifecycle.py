"""kubectl against ``kubesim serve`` beyond create/get/delete: namespace lifecycle, nodes (cordon,
drain, taints, labels, create and delete), events, logs, field validation, explain, auth can-i and
cluster-info. Skips without kubectl, fails then when KUBESIM_REQUIRE_KUBECTL=1 (CI sets it)."""

from __future__ import annotations

import pytest

from serving import Kubectl, find_kubectl, new_cluster, phase, pod, serving, wait_for, wait_pod

QUICK_STOP = {"kubesim.io/run-seconds": "3600", "kubesim.io/stop-seconds": "2"}


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
    kubectl("create", "-n", "doomed", "-f", kubectl.manifest("inside", annotations=QUICK_STOP))
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
