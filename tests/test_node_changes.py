"""The scheduler and the taint manager follow Node changes made through the API (real client, virtual
time): cordon, taints and tolerations, labels with nodeSelector and required node affinity, Nodes
created and deleted. The "0/N nodes are available" message counts each reason as kube-scheduler does."""

from __future__ import annotations

import pytest

from helpers import LONG_RUN, new_world, pod_manifest, rejected

PREEMPTION_NOT_HELPFUL = "Preemption is not helpful for scheduling"


def scheduled(api, name: str):
    """(node name, PodScheduled message) of a pod."""
    pod = api.read_namespaced_pod(name, "default")
    condition = next((c for c in pod.status.conditions or [] if c.type == "PodScheduled"), None)
    return pod.spec.node_name, condition.message if condition is not None and condition.status == "False" else None


def waiting(name: str, **spec) -> dict:
    return pod_manifest(name, annotations=LONG_RUN, **spec)


def test_cordon_keeps_new_pods_off_the_node_and_uncordon_lets_them_on():
    cluster, api = new_world(nodes=1)

    def main():
        cordoned = api.patch_node("node-1", {"spec": {"unschedulable": True}})
        cluster.sleep(1)
        taints = [(t.key, t.effect) for t in api.read_node("node-1").spec.taints]
        api.create_namespaced_pod("default", waiting("a"))
        cluster.sleep(1)
        pending = scheduled(api, "a")
        api.patch_node("node-1", {"spec": {"unschedulable": None}})
        cluster.sleep(1)
        return cordoned.spec.unschedulable, taints, pending, scheduled(api, "a"), api.read_node("node-1").spec.taints

    cordoned, taints, pending, bound, taints_after = cluster.run(main)
    assert cordoned is True and taints == [("node.kubernetes.io/unschedulable", "NoSchedule")]
    assert pending == (None, "0/1 nodes are available: 1 node(s) were unschedulable. preemption: 0/1 nodes are "
                             f"available: 1 {PREEMPTION_NOT_HELPFUL}.")
    assert bound == ("node-1", None) and not taints_after


def test_a_pod_tolerating_the_unschedulable_taint_lands_on_a_cordoned_node():
    cluster, api = new_world(nodes=1)
    toleration = [{"key": "node.kubernetes.io/unschedulable", "operator": "Exists", "effect": "NoSchedule"}]

    def main():
        api.patch_node("node-1", {"spec": {"unschedulable": True}})
        api.create_namespaced_pod("default", waiting("a", tolerations=toleration))
        cluster.sleep(1)
        return scheduled(api, "a")

    assert cluster.run(main) == ("node-1", None)


def test_the_unschedulable_message_counts_each_reason_per_node():
    cluster, api = new_world(nodes=4, node_cpu="2")

    def main():
        api.patch_node("node-1", {"spec": {"unschedulable": True}})
        api.patch_node("node-2", {"spec": {"taints": [{"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}]}})
        api.patch_node("node-3", {"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}})
        api.create_namespaced_pod("default", waiting("big", containers=[
            {"name": "base", "image": "busybox:1.36", "resources": {"requests": {"cpu": "3"}}}]))
        api.create_namespaced_pod("default", waiting("picky", nodeSelector={"disk": "ssd"}))
        cluster.sleep(1)
        return scheduled(api, "big"), scheduled(api, "picky")

    big, picky = cluster.run(main)
    assert big == (None, "0/4 nodes are available: 1 Insufficient cpu, 1 node(s) had untolerated taint "
                         "{dedicated: gpu}, 1 node(s) had untolerated taint {maintenance: }, 1 node(s) were "
                         "unschedulable. preemption: 0/4 nodes are available: 1 No preemption victims found for "
                         f"incoming pod, 3 {PREEMPTION_NOT_HELPFUL}.")
    assert picky[1].startswith("0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, "
                               "1 node(s) had untolerated taint {dedicated: gpu}, ")


def test_tolerations_let_pods_onto_tainted_nodes_by_key_value_and_effect():
    cluster, api = new_world(nodes=1)
    taint = {"key": "dedicated", "value": "gpu", "effect": "NoSchedule"}

    def main():
        api.patch_node("node-1", {"spec": {"taints": [taint]}})
        api.create_namespaced_pod("default", waiting("equal", tolerations=[
            {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}]))
        api.create_namespaced_pod("default", waiting("exists", tolerations=[{"key": "dedicated", "operator": "Exists"}]))
        api.create_namespaced_pod("default", waiting("everything", tolerations=[{"operator": "Exists"}]))
        api.create_namespaced_pod("default", waiting("wrong-value", tolerations=[
            {"key": "dedicated", "operator": "Equal", "value": "cpu"}]))
        api.create_namespaced_pod("default", waiting("wrong-effect", tolerations=[
            {"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}]))
        cluster.sleep(1)
        return {name: scheduled(api, name)[0] for name in ("equal", "exists", "everything", "wrong-value",
                                                           "wrong-effect")}

    assert cluster.run(main) == {"equal": "node-1", "exists": "node-1", "everything": "node-1",
                                 "wrong-value": None, "wrong-effect": None}


def test_a_no_execute_taint_evicts_untolerating_pods_now_and_tolerating_ones_when_their_time_is_up():
    cluster, api = new_world(nodes=1)
    tolerate = lambda seconds: [{"key": "maintenance", "operator": "Exists", "effect": "NoExecute",  # noqa: E731
                                 **({"tolerationSeconds": seconds} if seconds is not None else {})}]

    def main():
        api.create_namespaced_pod("default", waiting("plain"))
        api.create_namespaced_pod("default", waiting("for-a-while", tolerations=tolerate(30)))
        api.create_namespaced_pod("default", waiting("for-ever", tolerations=tolerate(None)))
        cluster.sleep(5)
        api.patch_node("node-1", {"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}})
        cluster.sleep(1)
        first = sorted(p.metadata.name for p in api.list_namespaced_pod("default").items)
        cluster.sleep(60)
        return first, sorted(p.metadata.name for p in api.list_namespaced_pod("default").items)

    first, later = cluster.run(main)
    assert first == ["for-a-while", "for-ever"] and later == ["for-ever"]
    evicted = [e for e in cluster.events() if e["reason"] == "TaintManagerEviction"]
    assert sorted(e["involvedObject"]["name"] for e in evicted) == ["for-a-while", "plain"]


def test_removing_a_no_execute_taint_in_time_cancels_the_eviction():
    cluster, api = new_world(nodes=1)

    def main():
        api.create_namespaced_pod("default", waiting("stays", tolerations=[
            {"key": "maintenance", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 30}]))
        cluster.sleep(5)
        api.patch_node("node-1", {"spec": {"taints": [{"key": "maintenance", "effect": "NoExecute"}]}})
        cluster.sleep(20)
        api.patch_node("node-1", {"spec": {"taints": None}})
        cluster.sleep(60)
        return api.read_namespaced_pod("stays", "default")

    stays = cluster.run(main)
    assert stays.metadata.deletion_timestamp is None and stays.status.phase == "Running"


def test_node_labels_changed_through_the_api_steer_node_selector_and_required_affinity():
    cluster, api = new_world(nodes=3)
    affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
        {"matchExpressions": [{"key": "zone", "operator": "In", "values": ["b", "c"]},
                              {"key": "spot", "operator": "DoesNotExist"}]},
        {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-3"]}]}]}}}

    def main():
        api.create_namespaced_pod("default", waiting("selector", nodeSelector={"disk": "ssd"}))
        api.create_namespaced_pod("default", waiting("affinity", affinity=affinity))
        api.create_namespaced_pod("default", waiting("by-name", affinity={"nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["node-3"]}]}]}}}))
        cluster.sleep(1)
        before = scheduled(api, "selector"), scheduled(api, "affinity")[0], scheduled(api, "by-name")[0]
        api.patch_node("node-2", {"metadata": {"labels": {"disk": "ssd", "zone": "b"}}})
        api.patch_node("node-1", {"metadata": {"labels": {"zone": "c", "spot": "yes"}}})
        cluster.sleep(1)
        return before, scheduled(api, "selector")[0], scheduled(api, "affinity")[0]

    (selector, affinity_before, by_name), selector_after, affinity_after = cluster.run(main)
    assert selector == (None, "0/3 nodes are available: 3 node(s) didn't match Pod's node affinity/selector. "
                              f"preemption: 0/3 nodes are available: 3 {PREEMPTION_NOT_HELPFUL}.")
    assert affinity_before == "node-3" and by_name == "node-3"   # its second term matched by name
    assert selector_after == "node-2"


def test_required_affinity_operators():
    cluster, api = new_world(nodes=2)

    def term(*expressions):
        return {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
            {"matchExpressions": list(expressions)}]}}}

    def main():
        api.patch_node("node-1", {"metadata": {"labels": {"cores": "16", "tier": "gold"}}})
        api.patch_node("node-2", {"metadata": {"labels": {"cores": "4"}}})
        cases = {"gt": term({"key": "cores", "operator": "Gt", "values": ["8"]}),
                 "lt": term({"key": "cores", "operator": "Lt", "values": ["8"]}),
                 "notin": term({"key": "tier", "operator": "NotIn", "values": ["gold"]}),
                 "exists": term({"key": "tier", "operator": "Exists"}),
                 "nowhere": {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {
                     "nodeSelectorTerms": [{}]}}}}
        for name, affinity in cases.items():
            api.create_namespaced_pod("default", waiting(name, affinity=affinity))
        cluster.sleep(1)
        return {name: scheduled(api, name)[0] for name in cases}

    assert cluster.run(main) == {"gt": "node-1", "lt": "node-2", "notin": "node-2", "exists": "node-1",
                                 "nowhere": None}


def test_a_node_created_through_the_api_is_registered_and_takes_waiting_pods():
    cluster, api = new_world(nodes=1, node_cpu="1")
    body = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": "big", "labels": {"size": "big"}},
            "status": {"capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"}}}

    def main():
        api.create_namespaced_pod("default", waiting("heavy", containers=[
            {"name": "base", "image": "busybox:1.36", "resources": {"requests": {"cpu": "4"}}}]))
        cluster.sleep(1)
        pending = scheduled(api, "heavy")
        api.create_node(body)
        cluster.sleep(5)
        return pending, scheduled(api, "heavy"), api.read_node("big"), api.read_namespaced_pod("heavy", "default")

    pending, bound, node, heavy = cluster.run(main)
    assert pending[0] is None and pending[1].startswith("0/1 nodes are available: 1 Insufficient cpu.")
    assert bound == ("big", None) and heavy.status.phase == "Running"
    assert [(c.type, c.status) for c in node.status.conditions] == [("Ready", "True")]
    assert node.status.allocatable["cpu"] == "16" and node.metadata.labels["size"] == "big"
    assert node.metadata.labels["kubernetes.io/hostname"] == "big"


def test_a_node_deleted_through_the_api_has_its_pods_garbage_collected():
    cluster, api = new_world(nodes=2)

    def main():
        api.create_namespaced_pod("default", waiting("on-it", nodeName="node-2"))
        api.create_namespaced_pod("default", waiting("elsewhere", nodeName="node-1"))
        cluster.sleep(5)
        api.delete_node("node-2")
        cluster.sleep(1)
        return sorted(p.metadata.name for p in api.list_namespaced_pod("default").items), \
            [n.metadata.name for n in api.list_node().items]

    pods, nodes = cluster.run(main)
    assert pods == ["elsewhere"] and nodes == ["node-1"] and "node-2" not in cluster.nodes
    gone = [t for t in cluster.trace if t[3] == "Pod" and t[5] == "on-it"]
    assert gone[-1][2] == "DELETED" and gone[-1][6] == "Failed"


def test_node_status_cannot_be_changed_through_the_main_resource():
    cluster, api = new_world(nodes=1)
    patched = cluster.run(api.patch_node, "node-1", {"status": {"capacity": {"cpu": "999"}}})
    assert patched.status.capacity["cpu"] == "8"
    error = cluster.run(rejected, api.read_node, "node-9")
    assert error.status == 404


@pytest.mark.parametrize("lose_then", ["restore", "delete"])
def test_a_lost_node_s_unreachable_taint_keeps_other_taints(lose_then):
    cluster, api = new_world(nodes=1)

    def main():
        api.patch_node("node-1", {"spec": {"taints": [{"key": "dedicated", "value": "x", "effect": "NoSchedule"}]}})
        cluster.lose_node("node-1")
        cluster.sleep(60)
        lost = sorted(t.key for t in api.read_node("node-1").spec.taints)
        if lose_then == "restore":
            cluster.restore_node("node-1")
            cluster.sleep(1)
            return lost, sorted(t.key for t in api.read_node("node-1").spec.taints)
        return lost, None

    lost, after = cluster.run(main)
    assert lost == ["dedicated", "node.kubernetes.io/unreachable", "node.kubernetes.io/unreachable"]
    assert after in (["dedicated"], None)
