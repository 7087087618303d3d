"""``kubesim demo``: it ends on every seed, and a crashed launcher ends it with its error."""

from __future__ import annotations

import io
import re

import pytest
from kubernetes import client
from rich.console import Console

from fakecluster import FakeCluster
from scenarios.demo import follow, pod_names, run_demo

DNS_1123 = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def quiet() -> Console:
    return Console(file=io.StringIO(), width=120)


@pytest.mark.parametrize("seed", [8, 10, 14, 15, 21, 29])
def test_the_demo_finishes_on_seeds_whose_words_are_capitalised(seed):
    outcome = run_demo(seed=seed, pods=24, console=quiet())
    assert len(outcome["final"]) == 23  # pod -5 is stuck on its image on purpose
    assert outcome["stuck"] == [name for name in outcome["stuck"] if name.endswith("-5")]


def test_a_hundred_demo_pods_get_valid_names():
    cluster = FakeCluster(seed=3)
    names = pod_names(cluster, 100)
    assert len(set(names)) == 100
    assert all(DNS_1123.fullmatch(name) and len(name) <= 63 for name in names), names


def test_a_crashed_launcher_ends_the_demo_with_its_error():
    cluster = FakeCluster(seed=1)
    api = client.CoreV1Api(cluster.api_client())

    def launch():
        cluster.sleep(2)
        raise RuntimeError("launcher broke")

    def main():
        return follow(cluster, api, 3, [], cluster.spawn(launch, name="launcher"))

    with pytest.raises(RuntimeError, match="launcher broke"):
        cluster.run(main)
    assert cluster.now < 300  # one watch round at most, not a wait until the horizon
