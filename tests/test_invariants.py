"""Each always-on invariant, shown firing on a world built to break it.

A check that cannot fail is a defect: every invariant of ``scenarios.invariants`` gets a world
(or a deliberately broken executor) that violates it, through the real client and executor, and
the violation must name the task, the pods, the time and what led there.
"""

from __future__ import annotations

import kubernetes
import pytest

from executor import ExecutorConfig, KubernetesExecutor, State
from fakecluster import Behaviour, FakeCluster
from scenarios.invariants import Watchdog, final_checks
from scenarios.world import World

ANNOTATIONS = {"dag_id": "etl", "task_id": "extract", "run_id": "manual__1", "map_index": "-1"}


def task_pod(name: str, try_number: str, run_seconds: int = 600) -> dict:
    return {"metadata": {"name": name, "labels": {"airflow-worker": "9"},
                         "annotations": {**ANNOTATIONS, "try_number": try_number,
                                         "kubesim.io/run-seconds": str(run_seconds)}},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36"}]}}


def watched_world(executor_class=KubernetesExecutor, seed: int = 5, **config) -> tuple[World, Watchdog]:
    class BrokenWorld(World):
        def make_executor(self, job_id):
            executor = executor_class(self.cluster.api_client(), self.cluster.runtime, job_id, self.config,
                                      task_store=self.store)
            if self.on_executor is not None:
                self.on_executor(executor)
            return executor

    world = BrokenWorld(FakeCluster(seed=seed, behaviour=Behaviour(run_seconds=lambda rng: 20.0)),
                        ExecutorConfig(**config))
    return world, Watchdog().attach(world)


def names(violations, invariant):
    return [v for v in violations if v.invariant == invariant]


def test_two_tries_of_one_task_running_at_once_are_two_running_copies():
    world, watchdog = watched_world()
    api = kubernetes.client.CoreV1Api(world.cluster.api_client())

    def run_twice():
        api.create_namespaced_pod("default", task_pod("extract-try-1", "1"))
        world.cluster.sleep(5)
        api.create_namespaced_pod("default", task_pod("extract-try-2", "2"))  # try 1 still runs
        world.cluster.sleep(5)

    world.cluster.run(run_twice)
    (violation,) = names(watchdog.violations, "one running copy per task instance")
    assert "etl.extract (manual__1)" in violation.message
    assert violation.pods == ("extract-try-1", "extract-try-2") and violation.time == 5
    final_checks(world, watchdog)
    assert any("extract-try-2: ADDED Pending" in line for line in violation.details)
    assert any("extract-try-1: MODIFIED Running" in line for line in violation.details)


def test_a_task_queued_again_after_it_succeeded_is_caught():
    world = World(FakeCluster(seed=6, behaviour=Behaviour(run_seconds=lambda rng: 5.0)))
    world.add_tasks("etl", ["extract"])
    world.run_until_done(timeout=100)
    ti = next(iter(world.store.tis.values()))
    assert ti.state == State.SUCCESS
    world.store.set_state(ti, State.SCHEDULED)   # as a host that forgot the success would
    world.run_until_done(timeout=100)

    (violation,) = names(final_checks(world, Watchdog()), "succeeded is final")
    assert "etl.extract" in violation.message and "was scheduled again" in violation.message


class DeletesOnEveryEvent(KubernetesExecutor):
    """Upstream's order (#72803): delete before de-duplicating terminal events."""

    def _on_terminal(self, key, event, state, reason):
        if event.event_type != "DELETED":
            self._started().delete(event.pod_name, event.namespace)
        super()._on_terminal(key, event, state, reason)


def test_a_second_delete_of_one_pod_is_caught():
    world, watchdog = watched_world(DeletesOnEveryEvent)
    world.add_tasks("etl", ["extract", "load"])
    world.run_until_done(timeout=300)
    found = names(final_checks(world, watchdog), "one clean-up per pod")
    assert found, "a pod deleted twice went unnoticed"
    assert "got a second clean-up (DELETE answered" in found[0].message
    assert any("DELETE answered 200" in line for line in found[0].details)


class KeepsSlots(KubernetesExecutor):
    """Reports each try but never frees its slot."""

    def change_state(self, key, state, info=None):
        super().change_state(key, state, info)
        if state in (State.SUCCESS, State.FAILED, None):
            self.running.add(key)


def test_a_slot_held_after_the_scheduler_stopped_is_caught():
    world, watchdog = watched_world(KeepsSlots)
    world.add_tasks("etl", ["extract"])
    world.run_until_done(timeout=600)
    (violation,) = names(final_checks(world, watchdog), "slots never leaked")
    assert "scheduler 1 ended (drain_timeout)" in violation.message and "etl.extract" in violation.message


def test_a_crashed_schedulers_slots_are_not_judged():
    world, watchdog = watched_world(KeepsSlots)
    world.add_tasks("etl", ["extract"])
    world.start_scheduler()
    world.cluster.at(3, lambda: world.crash_scheduler(restart_after=1))
    world.run_until_done(timeout=600)
    found = names(final_checks(world, watchdog), "slots never leaked")
    assert [v.message.split()[1] for v in found] == ["2"]    # the successor's, not the crashed one's


class ForgetsTries(KubernetesExecutor):
    """Accepts a try and never launches it, nor says so."""

    def execute_async(self, key, command, queue=None, executor_config=None):
        self.running.discard(key)


def test_a_task_that_never_finishes_is_lost():
    world, watchdog = watched_world(ForgetsTries, task_queued_timeout=1000)
    world.add_tasks("etl", ["extract"])
    with pytest.raises(TimeoutError):
        world.run_until_done(timeout=100)
    (violation,) = names(final_checks(world, watchdog), "no task lost")
    assert "etl.extract=queued" in violation.message


def test_a_try_reported_twice_is_caught():
    class ReportsTwice(KubernetesExecutor):
        def change_state(self, key, state, info=None):
            super().change_state(key, state, info)
            if state in (State.SUCCESS, State.FAILED, None):
                super().change_state(key, state, "again")

    world, watchdog = watched_world(ReportsTwice)
    world.add_tasks("etl", ["extract"])
    world.run_until_done(timeout=300)
    (violation,) = names(final_checks(world, watchdog), "reported once")
    assert "etl.extract" in violation.message and "again" in violation.message
