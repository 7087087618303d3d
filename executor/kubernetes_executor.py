"""KubernetesExecutor: runs each task try in its own pod and reports how it ended.

Upstream behaviours kept and improved are listed in the README ("The executor"). In short:
410s are handled inside the watcher, resourceVersions are never reset to "0", duplicate
terminal events are idempotent, kept failed pods are labelled done, publish errors are
classified and throttling backs off with Retry-After, pod names are fixed per try so a create
retried after a lost answer cannot start a second pod, and shutdown loses no result.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, deque
from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from .adoption import Adoption
from .backoff import Backoff
from .base import BaseExecutor
from .cleanup import CleanUps
from .config import ExecutorConfig
from .events import REVOKED_LABEL
from .keys import CommandType, InvalidCommand, State, TaskInstanceKey, is_task_run_command
from .launcher import KubeJob, PodLauncher, new_pod_name
from .podgen import InvalidExecutorConfig, annotations_to_key, build_labels, executor_config_pod_override
from .publishing import Publishing
from .runtime import Runtime
from .watcher import ALL_NAMESPACES, PodEvent, Resync

log = logging.getLogger(__name__)

SYNC_SHARE = 1 / 3                     # of scheduler_health_check_threshold one sync may spend


class KubernetesExecutor(Adoption, Publishing, BaseExecutor):
    def __init__(self, api_client: client.ApiClient, runtime: Runtime, scheduler_job_id: str,
                 config: ExecutorConfig | None = None, task_store=None, rng: random.Random | None = None,
                 mutation_hook=None):
        config = config or ExecutorConfig()
        super().__init__(config.parallelism)
        self.config, self.runtime = config, runtime
        self.job_id = str(scheduler_job_id)
        self.kube = client.CoreV1Api(api_client)
        self.task_store = task_store          # the scheduler's task-instance store, for resets
        self.rng = rng or random.Random()
        self.mutation_hook = mutation_hook
        self.resource_versions: dict[str, str] = {}
        self.task_queue: deque[KubeJob] = deque()
        self.launched: dict[TaskInstanceKey, tuple[str, str, float]] = {}  # key -> (pod, ns, when)
        self.pod_names: dict[TaskInstanceKey, str] = {}
        self.jobs: dict[TaskInstanceKey, KubeJob] = {}     # launched tries, for a re-launch
        self.launch_attempts: Counter = Counter()          # re-launches after pre-execution failures
        self.replacements: dict[tuple[str, str], KubeJob] = {}  # pod -> the re-launch waiting for it to go
        self.finished_pods: set[tuple[str, str]] = set()
        self.publish_retries: Counter = Counter()
        self.last_handled: dict[TaskInstanceKey, float] = {}
        self.create_backoff = Backoff(runtime)
        self.stats: Counter = Counter()
        self.launcher: PodLauncher | None = None
        self.clean_ups: CleanUps | None = None
        self.watchers_started: list = []  # every watcher this executor ran, for their statistics
        self._next_check: dict[str, float] = {}
        self._sync_deadline = 0.0
        self._init_adoption()

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.launcher = PodLauncher(self.config, self.kube, self.runtime, self.job_id,
                                    self.resource_versions, self.mutation_hook)
        self.launcher.started = self.watchers_started
        self.launcher.stats = self.stats
        self.clean_ups = CleanUps(self.runtime, self.launcher.delete, self.launcher.mark_done, self.stats)
        self.launcher.start()
        now = self.runtime.now()
        self._next_check = {"pending": now + self.config.worker_pods_pending_timeout_check_interval,
                            "queued": now, "orphans": now}  # a dead scheduler's finished pods: from the first sync

    def _started(self) -> PodLauncher:
        if self.launcher is None:
            raise RuntimeError("the executor was not started: call start() first")
        return self.launcher

    @property
    def clean_up_backlog(self) -> dict:
        """Finished pods whose clean-up has not gone through yet."""
        return self.clean_ups.backlog if self.clean_ups is not None else {}

    def pending_work(self) -> int:
        """Live tries, and finished pods whose clean-up still has to go through."""
        return len(self.running) + len(self.clean_up_backlog)

    # -- queueing ------------------------------------------------------------------------------

    def queue_command(self, key, command, priority=1, queue=None, executor_config=None) -> None:
        check_command(command)
        super().queue_command(key, command, priority, queue, executor_config)

    def execute_async(self, key: TaskInstanceKey, command: CommandType, queue: str | None = None,
                      executor_config: Any = None) -> None:
        check_command(command)
        self.running.add(key)
        try:
            pod_override = executor_config_pod_override(executor_config)
        except InvalidExecutorConfig as exc:
            self.fail(key, f"Invalid executor_config passed: {exc}")
            return
        self.event_buffer[key] = (State.QUEUED, self.job_id)
        if key not in self.pod_names:  # fixed per try: a retried create must reuse it
            self.pod_names[key] = new_pod_name(key, self.rng)
        name = self.pod_names[key]
        self.task_queue.append(KubeJob(key, command, pod_override, name))
        self.last_handled[key] = self.runtime.now()

    # -- the scheduler loop's call -------------------------------------------------------------

    def sync(self) -> None:
        """Catch up with the cluster. Bounded in time (a share of the scheduler's health
        threshold): with a slow API server, what is left waits for the next loop rather than
        holding the scheduler past its heartbeat, where other schedulers would take it for dead."""
        launcher = self._started()
        self._sync_deadline = self.runtime.now() + SYNC_SHARE * self.config.scheduler_health_check_threshold
        launcher.health_check()
        self._drain_results()
        self.clean_ups.run(self._sync_deadline)
        self.retry_adoptions(self._sync_deadline)
        self._create_pods()
        self._periodic_checks()

    def _drain_results(self) -> None:
        results = self._started().results
        while not results.empty():
            item = results.get_nowait()
            if isinstance(item, Resync):
                self._on_resync(item)
            else:
                self._on_pod_event(item)

    def _on_pod_event(self, event: PodEvent) -> None:
        if event.resource_version:
            namespace = ALL_NAMESPACES if ALL_NAMESPACES in self._started().watchers else event.namespace
            self.resource_versions[namespace] = event.resource_version  # never "0" (upstream bug)
        try:
            key = annotations_to_key(event.annotations)
        except ValueError as exc:
            log.warning("ignoring pod %s/%s: %s", event.namespace, event.pod_name, exc)
            return
        state, reason = event.verdict
        if state == State.RUNNING:
            if key in self.running:
                self.event_buffer[key] = (State.RUNNING, event.pod_name)
            return
        if state == State.ADOPTED:  # another scheduler took it: free the slot, say nothing, touch nothing
            self.clean_ups.forget((event.namespace, event.pod_name))
            if key in self.running and self.launched.get(key, ("",))[0] == event.pod_name:
                self.running.discard(key)
                self.launched.pop(key, None)
                self.jobs.pop(key, None)
                self.stats["adopted_away"] += 1
            return
        self._on_terminal(key, event, state, reason)

    def _on_terminal(self, key: TaskInstanceKey, event: PodEvent, state: str | None, reason: str) -> None:
        pod = (event.namespace, event.pod_name)
        clean_ups = self.clean_ups
        if pod in self.finished_pods:
            if pod in clean_ups.deleted_by_us:  # the echoes of our own delete, not replays
                self.stats["delete_echoes"] += 1
                if event.event_type == "DELETED":
                    clean_ups.deleted_by_us.discard(pod)
            else:  # a replayed or duplicate terminal event
                self.stats["duplicate_terminal_events"] += 1
            if event.event_type == "DELETED":
                clean_ups.forget(pod)
                self._launch_replacement(pod)
            return
        self.finished_pods.add(pod)
        if key in self.running and self.launched.get(key, (event.pod_name,))[0] == event.pod_name:
            relaunched = state == State.FAILED and self._relaunch(key, event, reason)
            if not relaunched:   # a re-launched try goes on: nothing to report yet
                self.change_state(key, state, reason)
                self._forget_try(key)
        if event.event_type == "DELETED":  # a deleted pod is gone: nothing left to clean up
            clean_ups.forget(pod)
        else:
            finished = event.phase in ("Succeeded", "Failed")
            # A pod whose try failed before it finished (a fatal container reason) is always
            # deleted: kept, it could still start later and run a try already declared failed.
            keep_failed = state == State.FAILED and not self.config.delete_worker_pods_on_failure
            clean_ups.schedule(pod, delete=not finished or (self.config.delete_worker_pods and not keep_failed))

    def _forget_try(self, key: TaskInstanceKey) -> None:
        self.launched.pop(key, None)
        self.pod_names.pop(key, None)
        self.jobs.pop(key, None)
        self.launch_attempts.pop(key, None)
        self.publish_retries.pop(key, None)

    def _relaunch(self, key: TaskInstanceKey, event: PodEvent, reason: str) -> bool:
        """A pod that failed before its task started (drained, evicted, could not pull) is launched
        again, up to ``pod_launch_failure_retries`` times, without spending a task retry (#69058)."""
        limit, job = self.config.pod_launch_failure_retries, self.jobs.get(key)
        if job is None or (limit != -1 and self.launch_attempts[key] >= limit):
            return False
        if (event.namespace, event.pod_name) in self.clean_ups.deleted_by_us:
            return False  # we deleted it ourselves (pending timeout): that is no launch failure
        if event.container_reason in self.config.pod_launch_failure_excluded_container_reasons:
            return False
        if not self._never_started(key):
            return False
        self.launch_attempts[key] += 1
        self.stats["relaunched"] += 1
        name = new_pod_name(key, self.rng)
        self.pod_names[key] = name
        self.launched.pop(key, None)
        if event.phase in ("Succeeded", "Failed") or event.event_type == "DELETED":
            self.task_queue.append(job._replace(pod_name=name))
        else:  # it may still start: one live pod per try, so the new one waits until it is gone
            self.replacements[(event.namespace, event.pod_name)] = job._replace(pod_name=name)
        log.info("pod %s/%s of %s failed before the task started (%s): launching it again (%d)",
                 event.namespace, event.pod_name, key, reason, self.launch_attempts[key])
        return True

    def _launch_replacement(self, pod: tuple[str, str]) -> None:
        job = self.replacements.pop(pod, None)
        if job is not None and job.key in self.running:
            self.task_queue.append(job)

    def _never_started(self, key: TaskInstanceKey) -> bool:
        """The task never ran: its task instance is still QUEUED (as upstream reads the database)."""
        ti = self.task_store.get(key) if self.task_store is not None else None
        return ti is not None and ti.try_number == key.try_number and ti.state == State.QUEUED

    def _on_resync(self, resync: Resync) -> None:
        """A running try whose pod was created before the list but is not in it has vanished."""
        if resync.resource_version:
            self.resource_versions[resync.namespace] = resync.resource_version
        for pod in [p for p in self.replacements if resync.namespace in (ALL_NAMESPACES, p[0])]:
            if pod[1] not in resync.pod_names:
                self._launch_replacement(pod)
        for key, (name, namespace, when) in list(self.launched.items()):
            same_scope = resync.namespace in (ALL_NAMESPACES, namespace)
            if same_scope and when < resync.listed_at and name not in resync.pod_names and key in self.running:
                self.launched.pop(key)
                self.stats["vanished_pods"] += 1
                self.fail(key, f"pod {namespace}/{name} vanished while the watch was down")

    # -- periodic checks -----------------------------------------------------------------------

    def _periodic_checks(self) -> None:
        now = self.runtime.now()
        if now >= self._next_check["pending"]:
            self._next_check["pending"] = now + self.config.worker_pods_pending_timeout_check_interval
            self._guarded(self.check_pending_timeout)
        if self.task_store is not None and now >= self._next_check["queued"]:
            self._next_check["queued"] = now + self.config.worker_pods_queued_check_interval
            self._guarded(self.clear_not_launched_queued_tasks)
        if now >= self._next_check["orphans"]:
            # Core stops asking for adoption when nothing is left to adopt (#57553): without this,
            # the succeeded pods of a dead scheduler would never be cleaned up.
            self._next_check["orphans"] = now + self.config.orphaned_tasks_check_interval
            self._guarded(self.adopt_completed_pods)

    def _guarded(self, check) -> None:
        """A periodic check that cannot reach the API server waits for its next turn; it must not
        take the scheduler loop down with it."""
        try:
            check()
        except (ApiException, Urllib3Error) as exc:
            self.stats["periodic_check_errors"] += 1
            log.warning("%s failed, trying again next interval: %s", check.__name__, exc)

    def check_pending_timeout(self) -> None:
        """Delete pods Pending longer than worker_pods_pending_timeout (the watcher then fails them)."""
        launcher = self._started()
        pods = launcher.list_pods(f"airflow-worker={self.job_id}", "status.phase=Pending",
                                  self.config.worker_pods_pending_timeout_batch_size)
        now = self.runtime.utcnow()
        for pod in pods:
            created = parse_time(pod["metadata"]["creationTimestamp"])
            if (now - created).total_seconds() > self.config.worker_pods_pending_timeout:
                log.info("pod %s Pending for over %ss: deleting it", pod["metadata"]["name"],
                         self.config.worker_pods_pending_timeout)
                self.stats["pending_timeouts"] += 1
                self.clean_ups.delete_now((pod["metadata"]["namespace"], pod["metadata"]["name"]))

    def clear_not_launched_queued_tasks(self) -> None:
        """Reset tries QUEUED by this scheduler that have no pod and are not on their way."""
        store = self.task_store
        if store is None:
            return
        horizon = self.runtime.now() - 3 * self.config.worker_pods_queued_check_interval
        self.last_handled = {k: t for k, t in self.last_handled.items() if t >= horizon}
        # A try with an event the scheduler has not collected yet (e.g. failed at once for a bad
        # executor_config) is not "queued without a pod": resetting it would lose that verdict.
        candidates = [ti for ti in store.queued_by(self.job_id)
                      if ti.key not in self.last_handled and not self.has_task(ti.key)
                      and ti.key not in self.event_buffer]
        if not candidates:
            return
        with_pods = {self._key_of(p) for p in self._started().list_pods(f"airflow-worker={self.job_id}")}
        for ti in candidates:
            if ti.key not in with_pods:
                log.info("task %s is QUEUED without a pod: resetting it", ti.key)
                self.stats["reset_not_launched"] += 1
                store.reset_to_scheduled(ti.key)

    @staticmethod
    def _key_of(pod: dict) -> TaskInstanceKey | None:
        try:
            return annotations_to_key(pod["metadata"].get("annotations") or {})
        except ValueError:
            return None

    # -- task logs -----------------------------------------------------------------------------

    def get_task_log(self, key: TaskInstanceKey) -> tuple[list[str], list[str]]:
        """(messages, log lines) of a try's pod, as Airflow's log view asks while a task runs: the
        last ``running_pod_log_lines`` lines of its base container, and with ``logs_task_metadata``
        where they came from (pod, node, phase)."""
        launcher = self._started()
        labels = build_labels(key, self.job_id)
        selector = ",".join(f"{name}={labels[name]}" for name in ("dag_id", "task_id", "run_id", "try_number"))
        try:
            pods = launcher.list_pods(selector)
        except (ApiException, Urllib3Error) as exc:
            return [f"cannot list the pods of {key}: {str(exc).splitlines()[0]}"], []
        if not pods:
            return [f"no pod of {key} is left to read logs from"], []
        pod = pods[0]
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        messages = [f"reading the log of pod {namespace}/{name} through the API"]
        if self.config.logs_task_metadata:
            status = pod.get("status") or {}
            messages.append(f"pod {name}: node {pod['spec'].get('nodeName', '-')}, phase {status.get('phase')}, "
                            f"labels {pod['metadata'].get('labels', {})}")
        try:
            response = launcher.kube.read_namespaced_pod_log(name, namespace, container="base",
                                                             tail_lines=self.config.running_pod_log_lines,
                                                             _preload_content=False)
        except (ApiException, Urllib3Error) as exc:
            return messages + [f"cannot read the log: {str(exc).splitlines()[0]}"], []
        return messages, response.data.decode("utf-8", "replace").splitlines()

    # -- revoking --------------------------------------------------------------------------

    def revoke_task(self, key: TaskInstanceKey) -> None:
        """Give up a try (it stayed queued too long): forget it, and delete its pod, labelled
        revoked first so that no watcher reports its end (provider 10.0.1, #43520)."""
        self.queued_tasks.pop(key, None)
        self.running.discard(key)
        self.adoption_pending.pop(key, None)
        name = (self.launched.get(key) or (self.pod_names.get(key),))[0]
        namespace = (self.launched.get(key) or ("", self.config.namespace))[1]
        self._forget_try(key)
        self.stats["revoked"] += 1
        if name is None or (namespace, name) in self.finished_pods:
            return
        launcher = self._started()
        try:
            launcher.label(name, namespace, {REVOKED_LABEL: "True"})
            self.clean_ups.delete_now((namespace, name))
        except ApiException as exc:
            if exc.status != 404:
                log.warning("could not revoke pod %s/%s: %s", namespace, name, str(exc).splitlines()[0])
        except Urllib3Error as exc:
            log.warning("could not revoke pod %s/%s: %s", namespace, name, exc)

    # -- shutdown ------------------------------------------------------------------------------

    def end(self) -> None:
        """Stop cleanly: hand back unlaunched tries, collect every result, stop the watchers."""
        launcher = self._started()
        while self.task_queue:
            job = self.task_queue.popleft()
            if job.key in self.running:
                self.change_state(job.key, State.SCHEDULED, "not launched before shutdown")
        self._drain_results()
        launcher.stop_watchers()
        self._drain_results()
        self.clean_ups.run(self.runtime.now() + SYNC_SHARE * self.config.scheduler_health_check_threshold)
        self.launcher = None

    def terminate(self) -> None:
        """Stop at once (the scheduler is going down hard): watchers are stopped, nothing flushed."""
        if self.launcher is not None:
            self.launcher.kill_watchers()
            self.launcher = None


def check_command(command: CommandType) -> None:
    if not is_task_run_command(command):
        raise InvalidCommand(command)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
