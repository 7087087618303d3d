"""From a validated scenario to a running world: cluster, behaviour, faults, tasks, timeline."""

from __future__ import annotations

import functools

from faker import Faker

from fakecluster import (Behaviour, Churn, ErrorRule, FakeCluster, Faults, LostAnswer, Outage, constant, exponential,
                         lognormal, uniform)
from executor import State, TaskInstance

from .schema import Distribution, Fault, Scenario, WorkloadSpec
from .timeline import FaultLog, label_of
from .world import World


def draw(dist: Distribution):
    """A fakecluster sampler for a schema distribution."""
    if dist.constant is not None:
        return constant(dist.constant)
    if dist.uniform is not None:
        return uniform(*dist.uniform)
    if dist.exponential is not None:
        return exponential(dist.exponential)
    return lognormal(dist.lognormal.median, dist.lognormal.p99)


def build_world(scenario: Scenario, seed: int, fault_log: FaultLog | None = None, executor: str | None = None,
                **cluster_options) -> World:
    """The scenario's world; ``cluster_options`` go to FakeCluster (``trace=False``: no trace),
    ``fault_log`` records each fault as it strikes (the report's timeline), and ``executor``
    overrides the file's ``under_test`` (kubesim or airflow)."""
    cluster = build_cluster(scenario, seed, **cluster_options)
    world = World(cluster, scenario.executor_config(), scenario.scheduler.loop_interval,
                  max_tis_per_query=scenario.scheduler.max_tis_per_query,
                  executor=executor or scenario.under_test)
    for fault in scenario.faults:
        schedule_fault(world, fault, fault_log)
    add_workload(world, scenario.workload, seed)
    if world.upstream_host is not None:   # Airflow's rows now: ids it refuses fail before the run
        world.upstream_host.mirror.flush()
    return world


def build_cluster(scenario: Scenario, seed: int, **options) -> FakeCluster:
    """The scenario's cluster (nodes, behaviour, API latency); ``options`` go to FakeCluster."""
    spec, work = scenario.cluster, scenario.workload
    faults = Faults(latency={verb: draw(d) for verb, d in spec.api_latency.items()})
    behaviour = Behaviour(run_seconds=draw(work.run_seconds), pull_seconds=draw(spec.image_pull_seconds),
                          failure_probability=work.failure_probability,
                          oom_probability=work.oom_probability,
                          image_error_probability=work.image_error_probability, image_error=work.image_error,
                          unschedulable_probability=work.unschedulable_probability)
    options.setdefault("record_events", spec.events != "none")
    options.setdefault("normal_events", spec.events == "all")
    return FakeCluster(seed=seed, nodes=spec.nodes, node_cpu=spec.node.cpu, node_memory=spec.node.memory,
                       node_pods=spec.node.pods, watch_cache_size=spec.watch_cache_size,
                       watch_cache_seconds=spec.watch_cache_seconds,
                       namespaces=tuple(dict.fromkeys(["default", "kube-system", *spec.namespaces])),
                       behaviour=behaviour, faults=faults, scheduling_delay=spec.scheduling_delay, **options)


def add_workload(world: World, work: WorkloadSpec, seed: int) -> None:
    names = task_names(work, seed)
    executor_config = pod_override(work)
    tis = [TaskInstance(dag_id, task_id, "scheduled__2024-01-01T00:00:00+00:00", retries=work.retries,
                        executor_config=executor_config,
                        state=State.SCHEDULED if work.arrival.mode == "at_once" else None)
           for dag_id, task_id in names]
    for ti in tis:
        world.store.add(ti)
    if work.arrival.mode == "rate":
        world.cluster.spawn(arrive, world, tis, 1.0 / work.arrival.per_second, name="arrivals")


def arrive(world: World, tis: list, gap: float) -> None:
    for ti in tis:
        world.store.set_state(ti, State.SCHEDULED)
        world.cluster.sleep(gap)


def pod_override(work: WorkloadSpec) -> dict:
    container = {"name": "base", "resources": {"requests": {"cpu": work.requests.cpu,
                                                            "memory": work.requests.memory}}}
    if work.env:
        container["env"] = [{"name": var.name, "value": var.value} for var in work.env]
    override: dict = {"spec": {"containers": [container]}}
    if work.sidecar_image:
        override["spec"]["containers"].append({"name": "sidecar", "image": work.sidecar_image})
    if work.annotations:
        override["metadata"] = {"annotations": dict(work.annotations)}
    return {"pod_override": override}


def task_names(work: WorkloadSpec, seed: int) -> list[tuple[str, str]]:
    """(dag_id, task_id) pairs, unique, from a Faker seeded by the scenario's seed. A sweep or an
    exploration builds the same small workload again and again: its names are drawn once."""
    if work.dags * work.tasks_per_dag <= NAMES_KEPT:
        return list(_kept_names(work.names, work.dags, work.tasks_per_dag, seed))
    return _draw_names(work.names, work.dags, work.tasks_per_dag, seed)


NAMES_KEPT = 10_000  # workloads up to this many tasks keep their names for the next world


@functools.lru_cache(maxsize=16)
def _kept_names(style: str, dags: int, tasks_per_dag: int, seed: int) -> tuple[tuple[str, str], ...]:
    return tuple(_draw_names(style, dags, tasks_per_dag, seed))


def _draw_names(style: str, dags: int, tasks_per_dag: int, seed: int) -> list[tuple[str, str]]:
    faker = seeded_faker(("en_US", "de_DE", "ja_JP") if style == "awkward" else ("en_US",), seed)
    pairs = []
    for d in range(dags):
        dag_id = dag_name(faker, style, d)
        for t in range(tasks_per_dag):
            pairs.append((dag_id, task_name(faker, style, t)))
    return pairs


def seeded_faker(locales: tuple[str, ...], seed: int) -> Faker:
    """A Faker for ``locales`` seeded with ``seed``, as a new one would be: made once per process
    (making one costs about 5 ms, as much as building the rest of a small world) and re-seeded,
    its memory of unique values cleared, for each world."""
    faker = _faker(locales)
    faker.seed_instance(seed)
    faker.unique.clear()
    return faker


@functools.lru_cache(maxsize=4)
def _faker(locales: tuple[str, ...]) -> Faker:
    return Faker(list(locales))


def dag_name(faker: Faker, style: str, i: int) -> str:
    if style == "plain":
        return f"dag_{i}"
    if style == "awkward":
        return f"{faker.catch_phrase().replace(' ', '_')}_{faker.name()}_{'X' * 40}_{i}"
    return f"{faker.word()}_{faker.word()}_{faker.random_element(['daily', 'hourly', 'etl', 'sync'])}_{i}"


def task_name(faker: Faker, style: str, i: int) -> str:
    if style == "plain":
        return f"task_{i}"
    if style == "awkward":
        return f"{faker.bs().title().replace(' ', '.')}--{faker.last_name()}__{i}"
    return f"{faker.word()}_{faker.random_element(['extract', 'load', 'transform', 'report'])}_{i}"


def schedule_fault(world: World, fault: Fault, fault_log: FaultLog | None = None) -> None:
    """Put one fault on the world's timeline; ``fault_log`` records each strike and window."""
    cluster, faults = world.cluster, world.cluster.faults
    action = fault.action
    if fault_log is not None:
        record_window(fault_log, fault)
    if action == "api_errors":
        rule = fault.api_errors
        faults.errors.append(ErrorRule(rule.code, tuple(rule.verbs), probability=rule.probability,
                                       count=rule.count, start=rule.start,
                                       end=rule.end if rule.end is not None else float("inf"),
                                       retry_after=rule.retry_after, status_body=rule.status_body,
                                       reason=rule.reason, message=rule.message))
        return
    if action == "lost_answers":
        rule = fault.lost_answers
        faults.lost_answers.append(LostAnswer(tuple(rule.verbs), probability=rule.probability, count=rule.count,
                                              start=rule.start, end=rule.end if rule.end is not None else float("inf")))
        return
    if action == "churn":
        spec = fault.churn
        cluster.churn(Churn(spec.pods_per_second, spec.namespace, spec.run_seconds, spec.keep_seconds,
                            spec.start, spec.end))
        return
    if action == "outage":
        faults.outages.append(Outage(fault.outage.start, fault.outage.end, fault.outage.mode))
        return
    if action == "connection_resets":
        faults.reset_probability = fault.connection_resets
        return
    strike = timed_action(world, fault)
    if fault_log is not None:
        act, label = strike, label_of(fault)
        strike = lambda: fault_log.strike(cluster.now, action, label, act())
    times = [fault.at]
    if fault.every:
        end = fault.until if fault.until is not None else world.cluster.kernel.horizon
        while times[-1] + fault.every <= end and len(times) < 10_000:
            times.append(times[-1] + fault.every)
    for when in times:
        cluster.at(when, strike)


def record_window(fault_log: FaultLog, fault: Fault) -> None:
    """The faults that hold for a while: error rules, outages, connection resets, a lost node."""
    action = fault.action
    if action == "api_errors":
        fault_log.window(fault.api_errors.start, fault.api_errors.end, action, label_of(fault))
    elif action == "outage":
        fault_log.window(fault.outage.start, fault.outage.end, action, label_of(fault))
    elif action == "connection_resets":
        fault_log.window(0.0, None, action, label_of(fault))
    elif action == "lose_node" and fault.lose_node.restore_after:
        fault_log.window(fault.at, fault.at + fault.lose_node.restore_after, action,
                         f"{fault.lose_node.node} down")


def timed_action(world: World, fault: Fault):
    cluster = world.cluster
    action = fault.action
    if action == "expire_watches":
        return cluster.expire_watches
    if action == "compact":
        return lambda: cluster.compact(fault.compact.keep)
    if action == "stall_watches":
        return lambda: cluster.stall_watches(fault.stall_watches.seconds)
    if action == "drop_watches":
        return cluster.drop_watches
    if action == "restart_scheduler":
        return world.restart_scheduler
    if action == "start_scheduler":
        return world.start_scheduler
    if action == "crash_scheduler":
        spec = fault.crash_scheduler
        return lambda: world.crash_scheduler(spec.scheduler, spec.restart_after)
    if action == "stop_scheduler":
        spec = fault.stop_scheduler
        return lambda: world.stop_scheduler(spec.scheduler, spec.restart_after)
    if action == "stall_scheduler":
        spec = fault.stall_scheduler
        return lambda: world.stall_scheduler(spec.seconds, spec.scheduler)
    if action == "lose_node":
        spec = fault.lose_node

        def lose():
            cluster.lose_node(spec.node)
            if spec.restore_after:
                cluster.at(cluster.now + spec.restore_after, lambda: cluster.restore_node(spec.node))
        return lose
    if action == "delete_node":
        return lambda: cluster.delete_node(fault.delete_node.node)
    if action == "evict":
        return lambda: evict_running(world, fault.evict.count)
    raise ValueError(f"unknown fault action {action}")


def evict_running(world: World, count: int) -> int:
    """Evict up to ``count`` running pods, drawn by the seeded RNG; how many were evicted."""
    running = [p for p in world.cluster.pods() if (p.get("status") or {}).get("phase") == "Running"]
    chosen = world.cluster.rng.sample(running, min(count, len(running)))
    return sum(bool(world.cluster.evict(pod["metadata"]["namespace"], pod["metadata"]["name"])) for pod in chosen)
