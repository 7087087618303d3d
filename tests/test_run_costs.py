"""What a 100,000-task `kubesim run` must not pay per task: counted here, never timed.

* the runner's metrics and series are one pass over the run's events (a series that recounts every
  live pod at every change makes the count grow with the square of the run, and fails);
* the scheduler queues at most ``max_tis_per_query`` task instances a loop, whatever the
  parallelism;
* a ``pod_override`` is parsed once per distinct content, and the queued tries share it.
"""

from __future__ import annotations

import gc
from collections import Counter

import pytest

from executor import ExecutorConfig, SchedulerJob, State
from executor.podgen import InvalidExecutorConfig, ParsedOverrides, parsed_overrides
from fakecluster import Behaviour, FakeCluster, constant
from scenarios import metrics
from scenarios.invariants import Watchdog, final_checks
from scenarios.loader import ScenarioError, load
from scenarios.world import World


class Touched(str):
    """A string that counts every hash and comparison made on it: the work a measurement does
    per recorded change shows up here, even inside C loops (a Counter over live pods hashes
    each one)."""

    count = 0

    def __hash__(self):
        Touched.count += 1
        return str.__hash__(self)

    def __eq__(self, other):
        Touched.count += 1
        return str.__eq__(self, other)

    def __ne__(self, other):
        return not self == other


def touched(value):
    return Touched(value) if isinstance(value, str) else value


def finished_world(tasks: int) -> World:
    """A world whose pods are all alive at once: the case where per-change rescans cost most."""
    cluster = FakeCluster(seed=5, nodes=4, node_pods=250, behaviour=Behaviour(run_seconds=constant(20)))
    world = World(cluster, ExecutorConfig(parallelism=0, worker_pods_creation_batch_size=500))
    world.add_tasks("wide", [f"t{index}" for index in range(tasks)])
    world.run_until_done(timeout=600)
    assert world.states() == {"success": tasks}
    # every string a measurement reads from the trace and the task histories now counts its use
    world.cluster.trace[:] = [tuple(map(touched, entry)) for entry in world.cluster.trace]
    for ti in world.store.tis.values():
        ti.history[:] = [(when, touched(state), number) for when, state, number in ti.history]
    return world


def work_of(measurement, world) -> int:
    Touched.count = 0
    measurement(world)
    return Touched.count


def everything_the_runner_measures(world) -> None:
    metrics.measure(world)
    final_checks(world, Watchdog())


def recounting_phases(world) -> list:
    """The pods-by-phase series as it was once written: every live pod recounted per change."""
    current, series = {}, []
    for when, _rv, kind, resource, namespace, name, phase in (e for e in world.cluster.trace if len(e) == 7):
        if resource == "Pod":
            if kind == "DELETED":
                current.pop((namespace, name), None)
            else:
                current[(namespace, name)] = phase
            series.append((when, dict(Counter(current.values()))))
    return series


@pytest.fixture(scope="module")
def small_and_large():
    return finished_world(50), finished_world(200)


def test_the_runners_measurements_grow_with_the_events_not_their_square(small_and_large):
    small, large = small_and_large
    events = [sum(1 for e in w.cluster.trace if len(e) == 7) for w in (small, large)]
    assert 3.5 < events[1] / events[0] < 4.5   # four times the tasks, four times the changes
    growth = work_of(everything_the_runner_measures, large) / work_of(everything_the_runner_measures, small)
    assert growth < 5.0   # one pass: ~4; recounting the live pods per change: ~16
    assert gc.isenabled()  # measuring pauses the collector, and only while it measures


def test_the_count_catches_a_series_that_recounts_the_live_pods(small_and_large):
    """The check above can fail: the old pods-by-phase series, counted the same way."""
    small, large = small_and_large
    assert recounting_phases(large) == list(metrics.phases_over_time(large.cluster.trace))   # same series
    growth = work_of(recounting_phases, large) / work_of(recounting_phases, small)
    assert growth > 10.0


def test_following_the_pods_as_they_change_measures_what_the_trace_would():
    """The runner keeps no full trace: its pod timeline, fed while the world runs, must give the
    series and start latencies the trace gives afterwards; the trace it keeps is the tail."""
    cluster = FakeCluster(seed=6, nodes=2, behaviour=Behaviour(run_seconds=constant(10)))
    world = World(cluster, ExecutorConfig(parallelism=8, worker_pods_creation_batch_size=4))
    timeline = metrics.PodTimeline()
    cluster.server.pods.listeners.append(timeline.on_change)
    world.add_tasks("dag", [f"t{index}" for index in range(20)])
    world.run_until_done(timeout=600)
    from_trace = metrics.PodTimeline.from_trace(cluster.trace)
    assert list(timeline.phases) == list(from_trace.phases) and len(timeline.phases) >= 20 * 4
    assert timeline.starts == from_trace.starts and len(timeline.starts) == 20

    everything = FakeCluster(seed=6, nodes=2).trace   # two namespaces, two nodes
    tail = FakeCluster(seed=6, nodes=2, trace=3)
    assert len(everything) == 4 and list(tail.trace) == everything[-3:]
    with pytest.raises(ValueError, match="trace must be True .* got 0"):
        FakeCluster(trace=0)


def test_phases_over_time_counts_pods_per_phase_after_each_change():
    trace = [(0.0, 1, "ADDED", "Pod", "ns", "a", "Pending"),
             (0.5, 2, "ADDED", "Node", "", "node-1", ""),
             (1.0, 3, "ADDED", "Pod", "ns", "b", "Pending"),
             (2.0, 4, "MODIFIED", "Pod", "ns", "a", "Running"),
             (2.5, "scheduler-error", "no node"),
             (3.0, 5, "MODIFIED", "Pod", "ns", "a", "Running"),
             (4.0, 6, "MODIFIED", "Pod", "ns", "a", "Succeeded"),
             (5.0, 7, "DELETED", "Pod", "ns", "a", "Succeeded"),
             (6.0, 8, "DELETED", "Pod", "ns", "b", "Pending")]
    assert list(metrics.phases_over_time(trace)) == [
        (0.0, {"Pending": 1}), (1.0, {"Pending": 2}), (2.0, {"Pending": 1, "Running": 1}),
        (3.0, {"Pending": 1, "Running": 1}), (4.0, {"Pending": 1, "Succeeded": 1}),
        (5.0, {"Pending": 1}), (6.0, {})]


def test_the_task_store_counts_states_from_its_index(small_and_large):
    small, _ = small_and_large
    store = small.store
    assert store.counts() == {"success": 50}
    store.set_state(next(iter(store.tis.values())), State.UP_FOR_RETRY)
    assert store.counts() == dict(Counter(str(ti.state) for ti in store.tis.values())) == \
        {"success": 49, "up_for_retry": 1}


# -- the scheduler's bounded queueing ------------------------------------------------------------

def queued_per_loop(max_tis_per_query: int, parallelism: int = 0, tasks: int = 70) -> list[int]:
    cluster = FakeCluster(seed=8, nodes=2, node_pods=110, behaviour=Behaviour(run_seconds=constant(5)))
    world = World(cluster, ExecutorConfig(parallelism=parallelism, worker_pods_creation_batch_size=100),
                  max_tis_per_query=max_tis_per_query)
    world.add_tasks("backfill", [f"t{index}" for index in range(tasks)])
    world.run_until_done(timeout=600)
    assert world.states() == {"success": tasks}
    queued = Counter(when for ti in world.store.tis.values() for when, state, _ in ti.history
                     if state == State.QUEUED)
    return [queued[when] for when in sorted(queued)]


def test_with_unlimited_parallelism_a_loop_queues_at_most_max_tis_per_query():
    assert queued_per_loop(max_tis_per_query=20) == [20, 20, 20, 10]


def test_max_tis_per_query_0_leaves_only_the_executors_slots_as_the_cap():
    assert queued_per_loop(max_tis_per_query=0) == [70]
    assert queued_per_loop(max_tis_per_query=0, parallelism=30) == [30, 30, 10]


def test_the_smaller_of_the_slots_and_max_tis_per_query_wins():
    # 25 (the cap), then the 5 slots left; once the first tries end, 25 and 5 again; the last 10
    assert queued_per_loop(max_tis_per_query=25, parallelism=30) == [25, 5, 25, 5, 10]


def test_a_negative_max_tis_per_query_is_refused():
    cluster = FakeCluster(seed=1)
    with pytest.raises(ValueError, match="max_tis_per_query must be 0 .* got -1"):
        SchedulerJob(World(cluster).store, cluster.runtime, "1", lambda job_id: None, max_tis_per_query=-1)


def test_the_scenario_option_reaches_the_scheduler_and_is_validated(tmp_path):
    from scenarios.build import build_world
    good = tmp_path / "good.yaml"
    good.write_text("scheduler: {max_tis_per_query: 7}\nworkload: {tasks_per_dag: 3}\n")
    world = build_world(load(good)[0].scenario, seed=1)
    assert world.start_scheduler().max_tis_per_query == 7
    bad = tmp_path / "bad.yaml"
    bad.write_text("scheduler:\n  max_tis_per_query: -5\n")
    with pytest.raises(ScenarioError, match=r"bad.yaml:2.*max_tis_per_query"):
        load(bad)


# -- pod_override parsed once ---------------------------------------------------------------------

def override(cpu: str = "250m") -> dict:
    """A new dict each call: equal content, distinct objects, as a database would hand them out."""
    return {"pod_override": {"spec": {"containers": [{"name": "base", "resources": {"requests": {"cpu": cpu}}}]}}}


def test_equal_pod_overrides_are_parsed_once_and_shared_by_the_queued_tries():
    cluster = FakeCluster(seed=4, nodes=3, behaviour=Behaviour(run_seconds=constant(5)))
    world = World(cluster, ExecutorConfig(parallelism=0, worker_pods_creation_batch_size=10))
    for index in range(40):
        world.add_tasks("dag", [f"t{index}"], executor_config=override())
    world.add_tasks("dag", ["bigger"], executor_config=override("2"))
    parsed_before = parsed_overrides.parsed
    shared, requested = {}, Counter()

    def look():  # after the first loop: 41 tries queued, 10 pods created
        shared["overrides"] = {id(job.pod_override) for job in world.scheduler.executor.task_queue}

    def created(change):
        if change.type == "ADDED":
            requested[change.obj["spec"]["containers"][0]["resources"]["requests"]["cpu"]] += 1

    cluster.server.pods.listeners.append(created)
    cluster.at(0.5, look)
    world.run_until_done(timeout=600)

    assert world.states() == {"success": 41}
    assert parsed_overrides.parsed - parsed_before <= 2   # one per distinct content (or none: cached)
    assert len(shared["overrides"]) == 2                  # the queue holds references to those two
    assert requested == {"250m": 40, "2": 1}              # and each pod got its own override


def test_a_changed_or_unhashable_override_is_parsed_again():
    cache = ParsedOverrides(size=2)
    first = override()["pod_override"]
    assert cache.parse(first) is cache.parse(override()["pod_override"])
    assert cache.parsed == 1
    first["spec"]["containers"][0]["resources"]["requests"]["cpu"] = "3"
    changed = cache.parse(first)
    assert cache.parsed == 2 and changed.spec.containers[0].resources.requests["cpu"] == "3"
    with_true = {"spec": {"containers": [{"name": "base", "image": "x", "stdin": True}]}}
    with_one = {"spec": {"containers": [{"name": "base", "image": "x", "stdin": 1}]}}
    assert with_true == with_one   # to Python; not to the API: 1 is no boolean
    parsed_true = cache.parse(with_true)
    assert parsed_true.spec.containers[0].stdin is True
    try:
        parsed_one = cache.parse(with_one)   # the classic models (36.x) take it as it is
    except InvalidExecutorConfig as refused:   # the pydantic models (37.x) refuse it
        parsed_one = refused
    assert parsed_one is not parsed_true and cache.parsed == 4
    assert len(cache._pods) == 2   # bounded: the oldest was forgotten
    odd = {"metadata": {"labels": {"a": object()}}}
    try:
        cache.parse(odd)   # not JSON-like: parsed (the client decides if it is a pod), never kept
    except InvalidExecutorConfig:
        pass
    assert cache.parsed == 5 and len(cache._pods) == 2


def test_a_pod_deleted_before_its_try_is_reported_still_has_a_result_latency():
    """Upstream Airflow's executor deletes a Succeeded pod, then reports its try."""
    timeline = metrics.PodTimeline()
    timeline.add(0.0, "ADDED", "ns", "a", "Pending")
    timeline.add(10.0, "MODIFIED", "ns", "a", "Succeeded")
    timeline.add(11.0, "DELETED", "ns", "a", "Succeeded")
    timeline.on_report(12.5, "a")
    assert list(timeline.latencies) == [2.5]
