"""The executor's behaviours against the simulated cluster, through the real kubernetes client.

One test per behaviour of the executor issue. Every test runs the real KubernetesExecutor in a
``World`` (FakeCluster + TaskStore + SchedulerJob) on a fixed seed and asserts on what can be
observed from outside: task states in the store, the executor's running set, events and stats,
the API calls the cluster served (and the query strings and bodies they carried), the pods left
in the cluster and the watch restarts.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from executor import ExecutorConfig, InvalidCommand, KubernetesExecutor, State, TaskInstanceKey
from executor.podgen import PodTemplateError
from fakecluster import Behaviour, ErrorRule, FakeCluster, Faults, Outage
from fakecluster.api.server import Reply
from fakecluster.doors.gateway import classify
from scenarios.world import World

RUN_ID = "manual__1"


# -- harness ------------------------------------------------------------------------------------

class Tap:
    """Every request the cluster received, with its query string and body, and its answer.

    Wraps the cluster's gateway (the simulated network), not the client: the executor's requests
    still go through the real kubernetes client and urllib3.
    """

    def __init__(self, cluster: FakeCluster):
        self.cluster = cluster
        self.requests: list[dict] = []
        exchange = cluster.gateway.exchange

        def tapped(request, read_timeout=None):
            verb, resource, name = classify(request)
            entry = {"time": cluster.now, "verb": verb, "resource": resource, "name": name,
                     "query": dict(request.query), "body": request.body, "status": None}
            self.requests.append(entry)
            try:
                reply = exchange(request, read_timeout)
            except Exception as exc:
                entry["status"] = type(exc).__name__
                raise
            entry["status"] = reply.status if isinstance(reply, Reply) else 200
            if isinstance(reply, Reply) and verb == "list":
                entry["reply"] = json.loads(reply.body)
            return reply

        cluster.gateway.exchange = tapped

    def of(self, verb: str, resource: str = "pods") -> list[dict]:
        return [r for r in self.requests if r["verb"] == verb and r["resource"] == resource]

    def watcher_lists(self) -> list[dict]:
        """The watchers' lists (the executor's own checks list with a field selector)."""
        return [r for r in self.of("list") if "fieldSelector" not in r["query"]]

    def created_names(self) -> list[str]:
        return [json.loads(r["body"])["metadata"]["name"] for r in self.of("create")]


class EventLog:
    """What each executor handed to its scheduler (every event buffer it gave up)."""

    def __init__(self):
        self.events: list[tuple[str, TaskInstanceKey, str | None, object]] = []

    def wrap(self, job_id: str, executor: KubernetesExecutor) -> KubernetesExecutor:
        get_event_buffer = executor.get_event_buffer

        def recorded(dag_ids=None):
            events = get_event_buffer(dag_ids)
            self.events.extend((job_id, key, state, info) for key, (state, info) in events.items())
            return events

        executor.get_event_buffer = recorded
        return executor

    def states(self, key: TaskInstanceKey) -> list:
        return [state for _, k, state, _ in self.events if k == key]

    def terminal(self) -> Counter:
        """How often each try was reported finished (anything but queued/running)."""
        return Counter(k for _, k, state, _ in self.events if state not in (State.QUEUED, State.RUNNING))

    def info(self, key: TaskInstanceKey, state) -> list:
        return [info for _, k, s, info in self.events if k == key and s == state]


class SpyWorld(World):
    """A World that records its executors and the events they report."""

    def __init__(self, cluster, config=None, **kwargs):
        super().__init__(cluster, config, **kwargs)
        self.event_log = EventLog()
        self.executors: list[KubernetesExecutor] = []
        self.launchers: list = []
        self.terminal_events: Counter = Counter()   # pod name -> terminal events the executor got

    def make_executor(self, job_id: str) -> KubernetesExecutor:
        executor = self.event_log.wrap(job_id, super().make_executor(job_id))
        self.executors.append(executor)
        start = executor.start

        def start_and_keep_launcher():
            start()
            self.launchers.append(executor.launcher)  # end() forgets it; the tests still look

        executor.start = start_and_keep_launcher
        on_terminal = executor._on_terminal

        def count_terminal(key, event, state, reason):   # every terminal event that reached it
            self.terminal_events[event.pod_name] += 1
            return on_terminal(key, event, state, reason)

        executor._on_terminal = count_terminal
        return executor


def make_world(seed=1, tasks=("a", "b", "c"), dag_id="etl", run_seconds=30.0, behaviour=None,
               faults=None, executor_config=None, world_kwargs=None, cluster_kwargs=None, **config):
    cluster = FakeCluster(seed=seed, behaviour=behaviour or Behaviour(run_seconds=lambda rng: run_seconds),
                          faults=faults, **(cluster_kwargs or {}))
    tap = Tap(cluster)
    world = SpyWorld(cluster, ExecutorConfig(**config), **(world_kwargs or {}))
    world.add_tasks(dag_id, tasks, executor_config=executor_config)
    return world, cluster, tap


def annotated(**annotations):
    """An executor_config steering the pod through fakecluster's kubesim.io annotations."""
    return {"pod_override": {"metadata": {"annotations": {f"kubesim.io/{k.replace('_', '-')}": str(v)
                                                          for k, v in annotations.items()}}}}


def ti_of(world, task_id, dag_id="etl"):
    return next(ti for ti in world.store.tis.values() if ti.task_id == task_id and ti.dag_id == dag_id)


def key_of(world, task_id, try_number=1, dag_id="etl"):
    ti = ti_of(world, task_id, dag_id)
    return TaskInstanceKey(ti.dag_id, ti.task_id, ti.run_id, try_number, ti.map_index)


def pods_of(cluster, **labels):
    return [p for p in cluster.pods("default")
            if all(p["metadata"].get("labels", {}).get(k) == v for k, v in labels.items())]


def deletes_per_pod(cluster) -> Counter:
    return Counter(c.name for c in cluster.gateway.log if c.verb == "delete" and c.resource == "pods")


def watch_rvs(tap) -> list:
    return [r["query"].get("resourceVersion") for r in tap.of("watch")]


def pod_event_rvs(cluster, until: float) -> list[int]:
    """The resourceVersions of pod changes up to virtual time ``until`` (from the cluster trace)."""
    return [t[1] for t in cluster.trace if len(t) == 7 and t[3] == "Pod" and t[0] <= until]


def revision_at(cluster, until: float) -> int:
    """The cluster's resourceVersion at virtual time ``until``: its newest change of any kind (Events too)."""
    return max(t[1] for t in cluster.trace if len(t) == 7 and t[0] <= until)


def crashed_watchers(cluster) -> list:
    return [p for p in cluster.kernel.crashed if p.name.startswith("watcher")]


def every_task(world, state) -> bool:
    return all(ti.state == state for ti in world.store.tis.values())


# -- 1. a 410 while iterating the watch ----------------------------------------------------------

def test_a_410_in_the_stream_is_handled_in_the_watcher_by_relisting():
    world, cluster, tap = make_world(seed=11, run_seconds=60, worker_pods_creation_batch_size=5)
    cluster.at(20, cluster.expire_watches)
    world.run_until_done(timeout=600)

    assert every_task(world, State.SUCCESS)
    (launcher,) = world.launchers
    watcher = launcher.watchers["default"]
    assert watcher.stats["expired"] == 1 and watcher.stats["relists"] == 2
    assert launcher.restarts == 0 and crashed_watchers(cluster) == []   # the watcher never died
    # One list at the start and one after the 410; every watch resumes from a list or an event.
    lists = tap.watcher_lists()
    assert [r["time"] for r in lists] == [0, 20]
    rvs = watch_rvs(tap)
    assert len(rvs) >= 2 and all(rv not in (None, "", "0") for rv in rvs)
    assert [r for r in tap.of("watch") if r["time"] == 20][0]["query"]["resourceVersion"] \
        == str(revision_at(cluster, 20))   # the re-list's resourceVersion
    assert cluster.pods() == [] and world.executors[0].running == set()


# -- 2. a read timeout resumes from the last event seen ------------------------------------------

def test_a_read_timeout_resumes_from_the_last_resource_version_seen():
    # One pod a loop: pods created after the first list send events on the first watch.
    world, cluster, tap = make_world(seed=12, run_seconds=20, worker_pods_creation_batch_size=1)
    cluster.at(5, lambda: cluster.stall_watches(None))   # bytes stop; the client times out
    world.run_until_done(timeout=600)

    assert every_task(world, State.SUCCESS)
    (launcher,) = world.launchers
    watcher = launcher.watchers["default"]
    assert watcher.stats["read_timeouts"] >= 1 and watcher.stats["relists"] == 1
    first, second = tap.of("watch")[:2]
    last_seen = max(pod_event_rvs(cluster, 5))     # the newest event delivered before the stall
    assert int(first["query"]["resourceVersion"]) < last_seen   # so "last seen" != "last graceful"
    assert second["query"]["resourceVersion"] == str(last_seen)
    assert second["time"] >= 30                    # it really was the read timeout that ended it
    assert len(tap.watcher_lists()) == 1                # resumed, not re-listed
    assert cluster.pods() == []


# -- 3. the executor's stored resourceVersions never go back to "0" -----------------------------

def test_sync_never_overwrites_the_stored_resource_version_with_zero():
    behaviour = Behaviour(run_seconds=lambda rng: rng.uniform(5, 60))
    world, cluster, tap = make_world(seed=13, tasks=[f"t{i}" for i in range(8)], behaviour=behaviour,
                                     worker_pods_creation_batch_size=2)
    for when in (12, 25, 41):
        cluster.at(when, cluster.expire_watches)   # each re-list reports pods with older RVs
    samples: list[dict] = []

    def sample():
        while not world.store.all_done():
            if world.executors:
                samples.append(dict(world.executors[0].resource_versions))
            cluster.sleep(0.5)

    cluster.spawn(sample, name="rv-sampler")
    world.run_until_done(timeout=600)

    assert every_task(world, State.SUCCESS)
    assert world.launchers[0].watchers["default"].stats["expired"] == 3
    values = [s["default"] for s in samples if "default" in s]
    assert len(values) > 50 and all(v not in ("", "0") for v in values)
    assert [int(v) for v in values] == sorted(int(v) for v in values)   # never goes back
    assert set().union(*samples) == {"default"}


# -- 4. a watcher that dies is restarted from the last resourceVersion it saw ------------------

def test_a_dead_watcher_is_restarted_from_the_last_resource_version_it_saw():
    faults = Faults(errors=[ErrorRule(403, verbs=("watch",), start=15, end=18)])
    world, cluster, tap = make_world(seed=14, run_seconds=30, faults=faults,
                                     worker_pods_creation_batch_size=5)
    cluster.at(15, cluster.drop_watches)
    world.run_until_done(timeout=600)

    assert every_task(world, State.SUCCESS)
    (launcher,) = world.launchers
    assert launcher.restarts >= 1 and len(crashed_watchers(cluster)) >= 1
    listed = int(tap.of("watch")[0]["query"]["resourceVersion"])    # the first list's resourceVersion
    last_seen = str(max([listed, *pod_event_rvs(cluster, 15)]))      # or a pod event's after it
    later = [r for r in tap.of("watch") if r["time"] >= 15]
    assert [r["status"] for r in later if r["status"] == 403]         # the window was hit
    assert later[-1]["status"] == 200
    assert all(r["query"].get("resourceVersion") == last_seen for r in later)
    assert len(tap.watcher_lists()) == 1                                   # no re-list, no replay
    assert cluster.pods() == []


# -- 5. duplicate and replayed terminal events are idempotent ---------------------------------

def test_duplicate_and_replayed_terminal_events_delete_once_and_report_once():
    # Deletes fail for the first 35 s, so finished pods linger; each re-list then replays them.
    behaviour = Behaviour(run_seconds=lambda rng: rng.uniform(5, 25), failure_probability=0.4)
    faults = Faults(errors=[ErrorRule(500, verbs=("delete",), end=35.0)])
    world, cluster, tap = make_world(seed=15, tasks=[f"t{i}" for i in range(10)], behaviour=behaviour,
                                     faults=faults, worker_pods_creation_batch_size=10,
                                     delete_worker_pods_on_failure=True)
    for when in (14, 22, 30):
        cluster.at(when, cluster.expire_watches)
    world.run_until_done(timeout=600)

    states = world.states()
    assert states.get("success", 0) + states.get("failed", 0) == 10 and states.get("failed")
    (executor,) = world.executors
    assert executor.stats["duplicate_terminal_events"] >= 5         # there were replays...
    assert executor.stats["delete_echoes"] == 10                    # (our own deletes' echoes apart)
    deleted = Counter(c.name for c in cluster.gateway.log if c.verb == "delete" and c.status == 200)
    assert sorted(deleted.elements()) == sorted(tap.created_names())  # ...yet one DELETE each
    keys = [key_of(world, f"t{i}") for i in range(10)]
    assert world.event_log.terminal() == Counter(keys)              # and one report per try
    assert world.scheduler.stale_events == 0
    assert cluster.pods() == [] and executor.running == set()


# -- 6. kept failed pods are labelled done and never replayed ---------------------------------

def test_kept_failed_pods_are_labelled_done_and_never_replayed():
    faults = Faults(errors=[ErrorRule(403, verbs=("watch",), start=30, end=33)])
    world, cluster, tap = make_world(seed=16, tasks=["f1", "f2", "f3"], faults=faults,
                                     executor_config=annotated(run_seconds=5, exit_code=3),
                                     worker_pods_creation_batch_size=5)
    world.add_tasks("etl", ["long"], executor_config=annotated(run_seconds=60))
    cluster.at(20, cluster.expire_watches)   # a re-list after the failures...
    cluster.at(30, cluster.drop_watches)     # ...and a watcher death and restart
    world.run_until_done(timeout=600)

    (executor,), (launcher,) = world.executors, world.launchers
    assert [ti_of(world, t).state for t in ("f1", "f2", "f3", "long")] == ["failed"] * 3 + ["success"]
    assert launcher.restarts >= 1 and len(tap.watcher_lists()) == 2
    kept = cluster.pods("default")
    assert sorted(p["metadata"]["annotations"]["task_id"] for p in kept) == ["f1", "f2", "f3"]
    assert all(p["metadata"]["labels"]["airflow_executor_done"] == "True" for p in kept)
    patches = Counter(r["name"] for r in tap.of("patch"))
    assert patches == Counter(p["metadata"]["name"] for p in kept)   # labelled once each
    assert all(r["query"]["labelSelector"].endswith("airflow_executor_done!=True")
               for r in tap.watcher_lists() + tap.of("watch"))
    for task in ("f1", "f2", "f3"):
        assert world.event_log.terminal()[key_of(world, task)] == 1
    relist = tap.watcher_lists()[1]["reply"]
    assert [p["metadata"]["annotations"]["task_id"] for p in relist["items"]] == ["long"]
    assert all(world.terminal_events[p["metadata"]["name"]] == 1 for p in kept)   # never replayed
    assert executor.running == set()


# -- 7. pod creation errors are classified --------------------------------------------------------

class Answer(ErrorRule):
    """An injected error with a chosen Status (e.g. an RBAC 403 or a quota-update 409)."""

    def __init__(self, make_error, **kwargs):
        self.make_error = make_error
        super().__init__(make_error().code, **kwargs)

    def error(self, resource, name):
        return self.make_error()


def rbac_forbidden():
    from fakecluster.api import status
    return status.forbidden("pods", None, 'User "system:serviceaccount:airflow:scheduler" cannot create '
                                          'resource "pods" in API group "" in the namespace "default"')


def quota_conflict():
    from fakecluster.api import status
    return status.conflict("resourcequotas", "compute-quota", status.STALE_OBJECT)


def create_attempts(tap):
    return [r for r in tap.of("create")]


@pytest.mark.parametrize("rule, config, expected", [
    pytest.param(lambda: ErrorRule(400, verbs=("create",)), {}, "400", id="400-bad-request"),
    pytest.param(lambda: ErrorRule(422, verbs=("create",)), {}, "422", id="422-invalid"),
    pytest.param(lambda: Answer(rbac_forbidden, verbs=("create",)), {"task_publish_max_retries": 5},
                 "cannot create resource", id="403-rbac"),
    pytest.param(None, {"namespace": "no-such-namespace", "task_publish_max_retries": 5}, "404",
                 id="404-missing-namespace"),
])
def test_permanent_create_errors_fail_the_try_at_once(rule, config, expected):
    faults = Faults(errors=[rule()] if rule else [])
    world, cluster, tap = make_world(seed=17, tasks=["a"], faults=faults, **config)
    world.run_until_done(timeout=120)

    assert ti_of(world, "a").state == State.FAILED
    assert len(create_attempts(tap)) == 1           # not retried, even with retries allowed
    (reason,) = world.event_log.info(key_of(world, "a"), State.FAILED)
    assert expected in reason
    assert cluster.pods() == [] and world.executors[0].running == set()


@pytest.mark.parametrize("max_retries, injected, state, creates", [
    (2, None, State.FAILED, 3),      # re-queued twice, then failed
    (0, None, State.FAILED, 1),      # the default: no re-queue
    (-1, 6, State.SUCCESS, 7),       # unlimited: keeps trying until the quota frees up
])
def test_quota_403_is_requeued_within_task_publish_max_retries(max_retries, injected, state, creates):
    faults = Faults(errors=[ErrorRule(403, verbs=("create",), count=injected)])
    world, cluster, tap = make_world(seed=18, tasks=["a"], faults=faults, run_seconds=5,
                                     task_publish_max_retries=max_retries)
    world.run_until_done(timeout=120)

    assert ti_of(world, "a").state == state
    attempts = create_attempts(tap)
    assert len(attempts) == creates
    assert [r["status"] for r in attempts[:-1]] == [403] * (creates - 1)
    assert len(set(tap.created_names())) == 1       # every attempt is the same pod
    if state == State.FAILED:
        (reason,) = world.event_log.info(key_of(world, "a"), State.FAILED)
        assert "exceeded quota" in reason
    assert cluster.pods() == []


@pytest.mark.parametrize("rule", [
    pytest.param(lambda: Answer(quota_conflict, verbs=("create",), count=1), id="409-conflict"),
    pytest.param(lambda: ErrorRule(500, verbs=("create",), count=1), id="500"),
])
def test_conflicts_and_server_errors_are_requeued(rule):
    rule = rule()
    world, cluster, tap = make_world(seed=19, tasks=["a"], faults=Faults(errors=[rule]), run_seconds=5,
                                     task_publish_max_retries=1)
    world.run_until_done(timeout=120)

    assert ti_of(world, "a").state == State.SUCCESS
    assert [r["status"] for r in create_attempts(tap)] == [rule.code, 201]
    assert world.executors[0].stats[f"publish_{rule.code}"] == 1


def test_429_pauses_pod_creation_until_retry_after():
    faults = Faults(errors=[ErrorRule(429, verbs=("create",), count=1, retry_after=30)])
    world, cluster, tap = make_world(seed=20, tasks=["a", "b", "c"], faults=faults, run_seconds=5,
                                     worker_pods_creation_batch_size=3)
    world.run_until_done(timeout=200)

    assert every_task(world, State.SUCCESS)     # throttling spends no publish retry (limit 0)
    attempts = create_attempts(tap)
    assert attempts[0]["time"] == 0 and attempts[0]["status"] == 429
    assert [r["time"] for r in attempts[1:]] == [30.0] * 3   # nothing in between, then the batch
    assert world.executors[0].stats["publish_429"] == 1 and cluster.pods() == []


@pytest.mark.parametrize("faults, max_retries, state", [
    (dict(outages=[Outage(0, 2.5, mode="refused")]), 3, State.SUCCESS),
    (dict(outages=[Outage(0, 2.5, mode="refused")]), 0, State.FAILED),
    (dict(reset_probability=0.5), 10, State.SUCCESS),
], ids=["refused-within-limit", "refused-no-retries", "resets"])
def test_connection_errors_on_create_are_requeued_within_the_limit(faults, max_retries, state):
    world, cluster, tap = make_world(seed=21, tasks=["a", "b"], faults=Faults(**faults), run_seconds=5,
                                     task_publish_max_retries=max_retries)
    world.run_until_done(timeout=300)

    assert every_task(world, state)
    broken = [r for r in create_attempts(tap) if not isinstance(r["status"], int)]
    assert broken                                   # the fault really hit pod creation
    if state == State.FAILED:
        for task in ("a", "b"):
            (reason,) = world.event_log.info(key_of(world, task), State.FAILED)
            assert "connection error" in reason
    assert len(set(tap.created_names())) == 2       # one pod name per try, however many attempts
    assert cluster.pods() == []


def test_a_create_whose_answer_is_lost_does_not_start_a_second_pod():
    slow_first = iter([5.5])
    faults = Faults(latency={"create": lambda rng: next(slow_first, 0.0)})
    world, cluster, tap = make_world(seed=22, tasks=["a"], faults=faults, run_seconds=20,
                                     task_publish_max_retries=1,
                                     kube_client_request_args={"_request_timeout": 5})
    world.run_until_done(timeout=300)

    assert ti_of(world, "a").state == State.SUCCESS
    calls = [(c.time, c.status) for c in cluster.gateway.log if c.verb == "create"]
    assert calls == [(5.0, "read-timeout"), (5.5, 201), (6.0, 409)]   # the retry found our pod
    pods_added = [t for t in cluster.trace if len(t) == 7 and t[2] == "ADDED" and t[3] == "Pod"]
    assert len(pods_added) == 1
    assert world.event_log.terminal() == Counter([key_of(world, "a")])
    assert cluster.pods() == []


def test_an_outage_during_a_periodic_check_does_not_stop_the_scheduler():
    faults = Faults(outages=[Outage(115, 125, mode="refused")])    # the pending check runs at 120
    world, cluster, tap = make_world(seed=23, tasks=["a"], run_seconds=200, faults=faults)
    world.run_until_done(timeout=600)

    assert ti_of(world, "a").state == State.SUCCESS
    assert cluster.kernel.crashed == [] and world.scheduler.handle.exception is None
    assert world.executors[0].stats["periodic_check_errors"] == 1
    assert cluster.pods() == []          # the scheduler lived to clean up its pod


# -- 8. pending pods: the pending timeout and fatal container reasons ---------------------------

def test_a_pod_stuck_unschedulable_is_deleted_after_the_pending_timeout_and_fails_the_try(caplog):
    world, cluster, tap = make_world(seed=24, tasks=["stuck"], executor_config=annotated(unschedulable="true"),
                                     worker_pods_pending_timeout=60,
                                     worker_pods_pending_timeout_check_interval=10)
    world.add_tasks("etl", ["fine"], executor_config=annotated(run_seconds=5))
    world.run_until_done(timeout=600)

    assert ti_of(world, "stuck").state == State.FAILED and ti_of(world, "fine").state == State.SUCCESS
    (stuck_pod,) = [c for c in cluster.gateway.log if c.verb == "delete" and c.name.startswith("etl-stuck")]
    assert 60 < stuck_pod.time <= 80                  # after the timeout, at the next check
    (reason,) = world.event_log.info(key_of(world, "stuck"), State.FAILED)
    assert "Pending" in reason
    assert world.executors[0].stats["pending_timeouts"] == 1
    pending_lists = [r for r in tap.of("list") if r["query"].get("fieldSelector") == "status.phase=Pending"]
    assert pending_lists and all(r["query"]["limit"] == "100" for r in pending_lists)
    assert cluster.pods() == [] and "could not clean up" not in caplog.text   # gone is done


@pytest.mark.parametrize("annotation", [
    {"image_error": "ErrImagePull"}, {"image_error": "InvalidImageName"},
    {"container_error": "CreateContainerConfigError"}], ids=lambda a: next(iter(a.values())))
def test_a_fatal_container_reason_fails_the_try_without_waiting_for_the_timeout(annotation):
    world, cluster, tap = make_world(seed=25, tasks=["bad"], executor_config=annotated(**annotation),
                                     worker_pods_pending_timeout=300, pod_launch_failure_retries=0)
    world.run_until_done(timeout=600)

    reason_name = next(iter(annotation.values()))
    assert ti_of(world, "bad").state == State.FAILED
    (reason,) = world.event_log.info(key_of(world, "bad"), State.FAILED)
    assert reason_name in reason
    failed_at = max(t for t, state, _ in ti_of(world, "bad").history if state == State.FAILED)
    assert failed_at < 10                             # not the 300 s pending timeout
    assert world.executors[0].stats["pending_timeouts"] == 0
    # Deleted even with delete_worker_pods_on_failure=False: kept, the Pending pod could still
    # start later and run a try already declared failed.
    assert cluster.pods() == []
    assert [c.status for c in cluster.gateway.log if c.verb == "delete"] == [200]


def test_image_pull_backoff_alone_is_not_fatal():
    # The kubelet shows ErrImagePull, then ImagePullBackOff; with ErrImagePull not configured as
    # fatal, the back-off alone must not fail the try: only the pending timeout does.
    world, cluster, tap = make_world(seed=26, tasks=["slow"], executor_config=annotated(image_error="ImagePullBackOff"),
                                     worker_pod_pending_fatal_container_state_reasons=["CreateContainerConfigError"],
                                     worker_pods_pending_timeout=90, worker_pods_pending_timeout_check_interval=30)
    world.run_until_done(timeout=600)

    backoffs = [e for e in cluster.events()
                if e.get("message") == "Error: ImagePullBackOff"]
    assert backoffs and backoffs[0]["involvedObject"]["name"].startswith("etl-slow")
    assert ti_of(world, "slow").state == State.FAILED
    failed_at = max(t for t, state, _ in ti_of(world, "slow").history if state == State.FAILED)
    assert failed_at > 90
    assert world.executors[0].stats["pending_timeouts"] == 1
    assert cluster.pods() == []


# -- 9. event mapping: deleted while running, and adopted away ----------------------------------

def other_scheduler_call(cluster, method, pod_name, body=None, query=""):
    """Someone else (kubectl, another scheduler) acting on a pod, straight at the API server."""
    headers = {"Content-Type": "application/strategic-merge-patch+json"} if method == "PATCH" else {}
    reply = cluster.request(method, f"/api/v1/namespaces/default/pods/{pod_name}{query}",
                            json.dumps(body).encode() if body is not None else None, headers)
    assert reply.status == 200, reply.body
    return reply


def test_a_running_pod_deleted_by_someone_fails_the_try():
    world, cluster, tap = make_world(seed=27, tasks=["victim"], run_seconds=60)
    cluster.at(10, lambda: other_scheduler_call(cluster, "DELETE", cluster.pods()[0]["metadata"]["name"],
                                                query="?gracePeriodSeconds=0"))
    world.run_until_done(timeout=600)

    key = key_of(world, "victim")
    assert world.event_log.states(key) == [State.QUEUED, State.RUNNING, State.FAILED]
    (reason,) = world.event_log.info(key, State.FAILED)
    assert "deleted before it could complete" in reason
    assert ti_of(world, "victim").state == State.FAILED
    assert world.executors[0].running == set() and cluster.pods() == []


def test_a_pod_relabelled_by_another_scheduler_is_adopted_away_silently():
    world, cluster, tap = make_world(seed=28, tasks=["moved", "stays"], run_seconds=30,
                                     worker_pods_creation_batch_size=2)
    moved = []

    def relabel():
        (pod,) = [p for p in cluster.pods() if p["metadata"]["annotations"]["task_id"] == "moved"]
        moved.append(pod["metadata"]["name"])
        other_scheduler_call(cluster, "PATCH", moved[0], {"metadata": {"labels": {"airflow-worker": "99"}}})

    cluster.at(10, relabel)
    slot_freed_at = []

    def watch_slot():
        key = key_of(world, "moved")
        while key in world.executors[0].running or not world.executors[0].running:
            cluster.sleep(0.5)
        slot_freed_at.append(cluster.now)

    cluster.spawn(watch_slot, name="slot-watcher")
    world.run_until_done(timeout=600)

    key = key_of(world, "moved")
    assert 10 <= slot_freed_at[0] <= 12                    # freed at once, not when the pod ends
    assert world.event_log.states(key) == [State.QUEUED, State.RUNNING]   # nothing after adoption
    assert world.executors[0].stats["adopted_away"] == 1
    assert ti_of(world, "moved").state == State.SUCCESS   # the pod itself still reports its task
    assert ti_of(world, "stays").state == State.SUCCESS
    assert [p["metadata"]["name"] for p in cluster.pods()] == moved   # the new owner's to clean up
    assert moved[0] not in deletes_per_pod(cluster)


# -- 10. adoption after a scheduler restart ---------------------------------------------------------

def adoption_world(seed, latency=None, **config):
    # The API refuses creates (429) from t=3.5 to t=33: the scheduler queues wait1 and wait2,
    # but their pods are not created before the quota comes back.
    throttle = ErrorRule(429, verbs=("create",), start=3.5, end=33, retry_after=1)
    faults = Faults(errors=[throttle], latency=latency or {})
    world, cluster, tap = make_world(seed=seed, tasks=[], parallelism=6, faults=faults, **config)
    world.add_tasks("etl", ["long1", "long2", "long3"], executor_config=annotated(run_seconds=60))
    world.add_tasks("etl", ["done"], executor_config=annotated(run_seconds=16.3))  # ends at 19.3
    world.add_tasks("etl", ["wait1"], executor_config=annotated(run_seconds=2))    # queued, no pod yet
    world.add_tasks("etl", ["wait2"], executor_config=annotated(run_seconds=5))
    return world, cluster, tap


def test_a_restarted_scheduler_adopts_running_pods_cleans_completed_ones_and_resets_the_rest():
    world, cluster, tap = adoption_world(seed=30)
    left_behind = []

    def restart():
        left_behind.extend((p["metadata"]["name"], p["status"]["phase"], p["metadata"]["labels"]["airflow-worker"])
                           for p in cluster.pods())
        world.restart_scheduler()

    cluster.at(19.7, restart)
    world.run_until_done(timeout=600)

    assert every_task(world, State.SUCCESS) and cluster.pods() == []
    first, second = world.jobs
    assert first.store.jobs["1"].state == State.FAILED and len(world.executors) == 2
    # At the crash: three running pods and one succeeded pod the dead scheduler never saw end.
    assert sorted(phase for _, phase, owner in left_behind if owner == "1") == ["Running"] * 3 + ["Succeeded"]
    running = sorted(name for name, phase, _ in left_behind if phase == "Running")
    completed = [name for name, phase, _ in left_behind if phase == "Succeeded"]
    patches = [r for r in tap.of("patch")]
    assert sorted(r["name"] for r in patches) == sorted(running + completed)
    assert all(json.loads(r["body"]) == {"metadata": {"labels": {"airflow-worker": "2"}}} and r["status"] == 200
               for r in patches)                          # label-only: no 422
    assert not [c for c in cluster.gateway.log if c.status == 422]
    assert second.executor.stats["adopted"] == 3 and second.executor.stats["completed_adopted"] == 1
    assert deletes_per_pod(cluster)[completed[0]] == 1    # the new owner cleaned it up
    # The adopted tries keep their try number; the unlaunched ones were reset and run again.
    for task in ("long1", "long2", "long3", "done"):
        assert ti_of(world, task).try_number == 1
    for task in ("wait1", "wait2"):
        states = [state for _, state, _ in ti_of(world, task).history]
        assert states == ["scheduled", "queued", "scheduled", "queued", "running", "success"]
    made = [json.loads(r["body"])["metadata"]["name"] for r in tap.of("create") if r["status"] == 201]
    assert len(made) == len(set(made)) == 6               # one pod per task, no duplicates
    assert all(job == "2" for job, key, state, _ in world.event_log.events
               if state not in (State.QUEUED, State.RUNNING))


def test_a_live_schedulers_pods_are_left_alone_until_it_dies():
    # The first scheduler keeps finished pods a while (slow deletes), so the second sees them.
    world, cluster, tap = adoption_world(seed=31, latency={"delete": lambda rng: 3.0},
                                         orphaned_tasks_check_interval=5)
    cluster.at(2.5, world.start_scheduler)                 # a second scheduler, both alive
    crashed = []
    cluster.at(40.5, lambda: crashed.append(world.crash_scheduler(world.jobs[0])))
    world.run_until_done(timeout=600)

    assert every_task(world, State.SUCCESS) and cluster.pods() == []
    first_patch = min(r["time"] for r in tap.of("patch"))
    assert first_patch >= 40.5                             # nothing touched while the first lived
    assert not [c for c in cluster.gateway.log if c.status == 422]
    second = world.jobs[1].executor
    assert second.stats["adopted"] == 3                    # the long ones, after the crash
    assert first_patch <= 40.5 + 5 + 1                     # at the next orphan check
    # The crash came while the first scheduler was deleting wait2's finished pod: the second
    # found it among the dead scheduler's completed pods and cleaned it up.
    assert second.stats["completed_adopted"] == 1
    assert deletes_per_pod(cluster) == Counter(set(tap.created_names()))  # 429s retried the same pod
    reporters = {key.task_id: job for job, key, state, _ in world.event_log.events
                 if state not in (State.QUEUED, State.RUNNING)}
    assert max(world.event_log.terminal().values()) == 1
    assert {reporters[t] for t in ("long1", "long2", "long3")} == {"2"}
    assert {reporters[t] for t in ("done", "wait1")} == {"1"}


def test_completed_pods_of_a_dead_scheduler_are_cleaned_up_even_with_nothing_to_adopt():
    world, cluster, tap = make_world(seed=38, tasks=["a"], run_seconds=9.3, orphaned_tasks_check_interval=30)

    def restart():                        # a's pod has succeeded; its scheduler never saw it
        world.restart_scheduler()
        world.add_tasks("etl", ["b"], executor_config=annotated(run_seconds=100))

    cluster.at(9.7, restart)
    world.run_until_done(timeout=600)

    assert every_task(world, State.SUCCESS) and cluster.pods() == []
    second = world.jobs[1].executor
    assert second.stats["adopted"] == 0 and second.stats["completed_adopted"] == 1
    (a_pod,) = [n for n in tap.created_names() if n.startswith("etl-a")]
    (relabel,) = [r for r in tap.of("patch") if r["name"] == a_pod]
    assert 9.7 <= relabel["time"] <= 9.7 + 1   # at the successor's first sync, not 30 s later
    assert deletes_per_pod(cluster)[a_pod] == 1


# -- 11. batching -----------------------------------------------------------------------------------

def test_at_most_a_batch_of_pods_is_created_per_scheduler_loop():
    tasks = [f"t{i:02d}" for i in range(10)]
    world, cluster, tap = make_world(seed=32, tasks=tasks, run_seconds=10, worker_pods_creation_batch_size=3)
    queue_lengths = []
    cluster.at(0.5, lambda: queue_lengths.append(len(world.executors[0].task_queue)))
    world.run_until_done(timeout=600)

    assert every_task(world, State.SUCCESS)
    per_loop = Counter(r["time"] for r in tap.of("create"))
    assert sorted(per_loop.items()) == [(0, 3), (1.0, 3), (2.0, 3), (3.0, 1)]
    assert queue_lengths == [7]                        # the rest waited in the executor's queue
    assert world.scheduler.loops >= 4 and cluster.pods() == []


def test_the_scheduler_queues_only_what_the_executor_has_room_for_highest_priority_first():
    world, cluster, tap = make_world(seed=39, tasks=[], run_seconds=10, parallelism=2)
    world.add_tasks("etl", ["low1", "low2"])
    world.add_tasks("etl", ["high"], priority=5)
    seen = []

    def look():
        names = lambda *states: sorted(ti.task_id for ti in world.store.in_state(*states))
        seen.append((names(State.QUEUED, State.RUNNING), names(State.SCHEDULED)))

    for tick in range(60):
        cluster.at(0.5 + tick / 2, look)
    world.run_until_done(timeout=600)

    assert every_task(world, State.SUCCESS)
    assert seen[0] == (["high", "low1"], ["low2"])      # high first; low2 waits, unqueued
    assert max(len(queued) for queued, _ in seen) == 2  # never more than the open slots
    assert seen[-1] == ([], [])


# -- 12. shutdown ---------------------------------------------------------------------------------

def test_shutdown_hands_back_unlaunched_tries_applies_pending_results_and_stops_the_watchers():
    world, cluster, tap = make_world(seed=33, tasks=["quick", "q1", "q2", "q3"], run_seconds=2,
                                     world_kwargs={"loop_interval": 5.0})
    seen = {}

    def scenario():
        job = world.start_scheduler()
        cluster.sleep(3)                   # quick's pod ended at 2; the next loop would be at 5
        executor, launcher = job.executor, world.launchers[0]
        seen["queued"] = len(executor.task_queue)
        seen["results"] = launcher.results.qsize()
        job.stop()
        seen["stopped_at"] = cluster.now
        seen["watchers_alive"] = [w.is_alive() for w in launcher.watchers.values()]
        seen["results_after"] = launcher.results.qsize()
        job.handle.join()

    cluster.run(scenario)

    assert seen["queued"] == 3 and seen["results"] >= 1       # both queues held something
    assert seen["watchers_alive"] == [False] and seen["results_after"] == 0
    assert ti_of(world, "quick").state == State.SUCCESS
    assert world.event_log.states(key_of(world, "quick"))[-1] is None   # its result was applied...
    assert deletes_per_pod(cluster) == Counter(tap.created_names())     # ...and its pod cleaned up
    for task in ("q1", "q2", "q3"):
        ti = ti_of(world, task)
        assert (ti.state, ti.try_number, ti.queued_by_job_id) == (State.SCHEDULED, 0, None)
        assert world.event_log.states(key_of(world, task)) == [State.QUEUED, State.SCHEDULED]
    executor = world.executors[0]
    assert executor.running == set() and not executor.task_queue and executor.launcher is None
    assert [w for w in cluster.kernel.blocked if w.name.startswith("watcher")] == []
    assert len(tap.of("create")) == 1

    world.run_until_done(timeout=600)      # nothing was lost: a new scheduler runs the rest
    assert every_task(world, State.SUCCESS) and cluster.pods() == []
    assert [ti_of(world, t).try_number for t in ("q1", "q2", "q3")] == [1, 1, 1]


# -- bad input --------------------------------------------------------------------------------------

def test_an_invalid_executor_config_fails_only_that_try_with_a_clear_reason():
    world, cluster, tap = make_world(seed=34, tasks=["good"], run_seconds=5)
    world.add_tasks("etl", ["bad"], executor_config={"pod_overide": {}})
    world.run_until_done(timeout=300)

    assert ti_of(world, "bad").state == State.FAILED and ti_of(world, "good").state == State.SUCCESS
    (reason,) = world.event_log.info(key_of(world, "bad"), State.FAILED)
    assert reason.startswith("Invalid executor_config passed") and "pod_overide" in reason
    # failed on its first and only try: not mistaken for "queued without a pod" and re-run
    assert [(state, n) for _, state, n in ti_of(world, "bad").history] == [
        (State.SCHEDULED, 0), (State.QUEUED, 1), (State.FAILED, 1)]
    assert world.scheduler.stale_events == 0
    assert [n.split("-")[1] for n in tap.created_names()] == ["good"]   # no pod for the bad one
    assert world.executors[0].running == set()


def test_a_command_that_is_not_a_task_run_is_refused():
    world, cluster, tap = make_world(seed=35, tasks=[])
    executor = world.make_executor("1")
    key = TaskInstanceKey("etl", "a", RUN_ID)
    for command in (["bash", "-c", "rm -rf /"], "airflow tasks run etl a", ["airflow", "dags", "list"]):
        with pytest.raises(InvalidCommand) as refused:
            executor.queue_command(key, command)
        assert "airflow" in str(refused.value) and repr(command) in str(refused.value)
        with pytest.raises(InvalidCommand):
            executor.execute_async(key, command)
    assert not executor.queued_tasks and not executor.task_queue and tap.requests == []


@pytest.mark.parametrize("template, problem", [
    (None, "cannot be read"),
    ("kind: Service\nspec: {}\n", "describes a 'Service'"),
])
def test_a_missing_or_invalid_pod_template_is_a_clear_error_at_start(tmp_path, template, problem):
    path = tmp_path / "pod.yaml"
    if template is not None:
        path.write_text(template)
    world, cluster, tap = make_world(seed=36, tasks=["a"], pod_template_file=str(path))
    with pytest.raises(PodTemplateError) as raised:
        world.run_until_done(timeout=60)
    assert str(path) in str(raised.value) and problem in str(raised.value)
    assert tap.requests == [] and ti_of(world, "a").state == State.SCHEDULED   # nothing started


# -- the raw-event path ------------------------------------------------------------------------------

def run_mixed_world(raw: bool):
    behaviour = Behaviour(run_seconds=lambda rng: rng.uniform(5, 40), failure_probability=0.3)
    world, cluster, tap = make_world(seed=37, tasks=[f"t{i}" for i in range(12)], behaviour=behaviour,
                                     worker_pods_creation_batch_size=4, raw_watch_events=raw,
                                     delete_option_kwargs={"grace_period_seconds": 5})
    world.add_tasks("etl", ["img"], executor_config=annotated(image_error="ErrImagePull"))
    cluster.at(15, cluster.expire_watches)
    cluster.at(25, lambda: cluster.stall_watches(None))
    world.run_until_done(timeout=900)
    return world, cluster, tap


def test_raw_watch_events_give_the_same_outcomes_as_model_events():
    model_world, model_cluster, model_tap = run_mixed_world(raw=False)
    raw_world, raw_cluster, raw_tap = run_mixed_world(raw=True)

    histories = lambda w: {ti.task_id: ti.history for ti in w.store.tis.values()}
    assert histories(raw_world) == histories(model_world)
    assert raw_world.event_log.events == model_world.event_log.events
    calls = lambda c: [(x.time, x.verb, x.name, x.status) for x in c.gateway.log]
    assert calls(raw_cluster) == calls(model_cluster)
    assert raw_cluster.trace == model_cluster.trace
    assert set(model_world.states()) == {"success", "failed"}       # the run was not trivial
    assert model_world.launchers[0].watchers["default"].stats["expired"] == 1
