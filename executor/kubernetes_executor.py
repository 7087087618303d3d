"""KubernetesExecutor: runs each task try in its own pod and reports how it ended.

Upstream behaviours kept and improved are listed in the README ("The executor"). In short:
410s are handled inside the watcher, resourceVersions are never reset to "0", duplicate
terminal events are idempotent, kept failed pods are labelled done, publish errors are
classified and throttling backs off with Retry-After, pod names are fixed per try so a create
retried after a lost answer cannot start a second pod, and shutdown loses no result.
"""

from __future__ import annotations

import json
import logging
import random
from collections import Counter, deque
from datetime import datetime
from typing import Any, Iterable

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from .base import BaseExecutor
from .config import ExecutorConfig
from .events import DONE_LABEL
from .keys import CommandType, InvalidCommand, State, TaskInstanceKey, is_task_run_command
from .launcher import KubeJob, PodLauncher, new_pod_name
from .podgen import (InvalidExecutorConfig, PodMutationHookError, PodReconciliationError,
                     annotations_to_key, executor_config_pod_override)
from .runtime import Runtime
from .watcher import ALL_NAMESPACES, PodEvent, Resync

log = logging.getLogger(__name__)

THROTTLED = (429, 503)                 # back off for Retry-After, without spending a retry
RETRYABLE = (409, 410, 500, 502, 504)  # re-queue while task_publish_max_retries allows
CLEAN_UPS_PER_SYNC = 50                # bounded, so an outage's backlog cannot stall a loop


class KubernetesExecutor(BaseExecutor):
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
        self.finished_pods: set[tuple[str, str]] = set()
        self.deleted_by_us: set[tuple[str, str]] = set()  # awaiting the DELETED echo
        self.publish_retries: Counter = Counter()
        self.last_handled: dict[TaskInstanceKey, float] = {}
        self.create_pods_after = 0.0
        self.stats: Counter = Counter()
        self.launcher: PodLauncher | None = None
        self.clean_up_backlog: dict[tuple[str, str], tuple[str | None, bool]] = {}  # (ns, pod) -> (state, finished)
        self.watchers_started: list = []  # every watcher this executor ran, for their statistics
        self._next_check: dict[str, float] = {}

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> None:
        self.launcher = PodLauncher(self.config, self.kube, self.runtime, self.job_id,
                                    self.resource_versions, self.mutation_hook)
        self.launcher.started = self.watchers_started
        self.launcher.start()
        now = self.runtime.now()
        self._next_check = {"pending": now + self.config.worker_pods_pending_timeout_check_interval,
                            "queued": now, "orphans": now + self.config.orphaned_tasks_check_interval}

    def _started(self) -> PodLauncher:
        if self.launcher is None:
            raise RuntimeError("the executor was not started: call start() first")
        return self.launcher

    def has_pending_work(self) -> bool:
        """Live tries, or finished pods whose clean-up still has to go through."""
        return bool(self.running or self.clean_up_backlog)

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
        launcher = self._started()
        launcher.health_check()
        self._drain_results()
        self._retry_clean_ups()
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
        if state == State.ADOPTED:  # another scheduler took it: free the slot, say nothing
            if key in self.running and self.launched.get(key, ("",))[0] == event.pod_name:
                self.running.discard(key)
                self.launched.pop(key, None)
                self.stats["adopted_away"] += 1
            return
        self._on_terminal(key, event, state, reason)

    def _on_terminal(self, key: TaskInstanceKey, event: PodEvent, state: str | None, reason: str) -> None:
        pod = (event.namespace, event.pod_name)
        if pod in self.finished_pods:
            if event.event_type == "DELETED" and pod in self.deleted_by_us:
                self.deleted_by_us.discard(pod)  # the echo of our own delete, not a replay
                self.stats["delete_echoes"] += 1
            else:  # a replayed or duplicate terminal event
                self.stats["duplicate_terminal_events"] += 1
            return
        self.finished_pods.add(pod)
        if key in self.running:
            self.change_state(key, state, reason)
            self.launched.pop(key, None)
            self.pod_names.pop(key, None)
            self.publish_retries.pop(key, None)
        if event.event_type != "DELETED":  # a deleted pod is gone: nothing left to clean up
            self._clean_up(event.pod_name, event.namespace, state, finished=event.phase in ("Succeeded", "Failed"))

    def _clean_up(self, name: str, namespace: str, state: str | None, finished: bool = True) -> None:
        """Delete a finished pod once, or label it done so no watcher replays it again.

        A pod whose try failed before it finished (a fatal container reason) is always deleted:
        kept, it could still start later and run a try already declared failed."""
        launcher = self._started()
        keep_failed = state == State.FAILED and not self.config.delete_worker_pods_on_failure
        delete = not finished or (self.config.delete_worker_pods and not keep_failed)
        try:
            if delete:
                launcher.delete(name, namespace)
                self.deleted_by_us.add((namespace, name))
                self.stats["pods_deleted"] += 1
            else:
                launcher.mark_done(name, namespace)
                self.stats["pods_marked_done"] += 1
        except (ApiException, Urllib3Error) as exc:
            # An idle finished pod sends no further event: retry from sync until it works.
            self.clean_up_backlog[(namespace, name)] = (state, finished)
            log.warning("could not clean up pod %s/%s (will retry): %s", namespace, name,
                        str(exc).splitlines()[0])
        else:
            self.clean_up_backlog.pop((namespace, name), None)

    def _retry_clean_ups(self) -> None:
        for (namespace, name), (state, finished) in list(self.clean_up_backlog.items())[:CLEAN_UPS_PER_SYNC]:
            self._clean_up(name, namespace, state, finished)

    def _on_resync(self, resync: Resync) -> None:
        """A running try whose pod was created before the list but is not in it has vanished."""
        if resync.resource_version:
            self.resource_versions[resync.namespace] = resync.resource_version
        for key, (name, namespace, when) in list(self.launched.items()):
            same_scope = resync.namespace in (ALL_NAMESPACES, namespace)
            if same_scope and when < resync.listed_at and name not in resync.pod_names and key in self.running:
                self.launched.pop(key)
                self.stats["vanished_pods"] += 1
                self.fail(key, f"pod {namespace}/{name} vanished while the watch was down")

    # -- creating pods -------------------------------------------------------------------------

    def _create_pods(self) -> None:
        if self.runtime.now() < self.create_pods_after:
            return
        for _ in range(min(self.config.worker_pods_creation_batch_size, len(self.task_queue))):
            job = self.task_queue.popleft()
            if job.key not in self.running:  # failed or revoked while waiting
                continue
            if not self._publish(job):
                break

    def _publish(self, job: KubeJob) -> bool:
        """Create the pod of one job; False when creation should pause for this loop."""
        try:
            pod = self._started().create(job)
        except ApiException as exc:
            if exc.status == 409 and "already exists" in error_message(exc):
                pod = None  # an earlier attempt landed (its answer was lost): the pod is ours
            else:
                return self._publish_failed(job, exc)
        except (PodReconciliationError, PodMutationHookError) as exc:
            self.fail(job.key, f"could not build the pod: {exc}")
            return True
        except Urllib3Error as exc:
            return self._retry_or_fail(job, f"connection error: {type(exc).__name__}: {exc}")
        namespace = pod.metadata.namespace if pod is not None else self.config.namespace
        self.launched[job.key] = (job.pod_name, namespace, self.runtime.now())
        self.publish_retries.pop(job.key, None)
        self.stats["pods_created"] += 1
        return True

    def _publish_failed(self, job: KubeJob, exc: ApiException) -> bool:
        message, status = error_message(exc), exc.status
        self.stats[f"publish_{status}"] += 1
        if status in THROTTLED:
            retry_after = retry_after_seconds(exc)
            if status == 429 or retry_after is not None:
                self.create_pods_after = self.runtime.now() + (retry_after or 0)
                self.task_queue.appendleft(job)  # not its fault: keep its place
                return False
        if (status == 403 and "exceeded quota" in message) or status in RETRYABLE or status in THROTTLED:
            return self._retry_or_fail(job, f"{status}: {message}")
        self.fail(job.key, f"pod creation failed with {status}: {message}")
        return True

    def _retry_or_fail(self, job: KubeJob, why: str) -> bool:
        limit = self.config.task_publish_max_retries
        if limit == -1 or self.publish_retries[job.key] < limit:
            self.publish_retries[job.key] += 1
            self.task_queue.append(job)
            log.info("re-queueing %s after %s (attempt %d)", job.key, why, self.publish_retries[job.key])
        else:
            self.publish_retries.pop(job.key, None)
            self.fail(job.key, f"pod creation failed: {why}")
        return True

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
                launcher.delete(pod["metadata"]["name"], pod["metadata"]["namespace"])

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

    # -- adoption ------------------------------------------------------------------------------

    def try_adopt_task_instances(self, tis: Iterable) -> list:
        """Take over the pods of dead schedulers' tries; return the tries that could not be."""
        launcher = self._started()
        not_adopted, by_job = [], {}
        for ti in tis:
            owner = str(ti.queued_by_job_id or "")
            if not owner:
                not_adopted.append(ti)
            elif owner != self.job_id:  # our own tries need no adopting
                by_job.setdefault(owner, []).append(ti)
        for old_job, job_tis in by_job.items():
            pods = launcher.list_pods(f"kubernetes_executor=True,airflow-worker={old_job},{DONE_LABEL}!=True",
                                      "status.phase!=Succeeded")
            pods_by_key = {self._key_of(p): p for p in pods}
            for ti in job_tis:
                pod = pods_by_key.get(ti.key)
                if pod is None or not self._adopt(ti.key, pod):
                    not_adopted.append(ti)
        self.adopt_completed_pods()
        return not_adopted

    def _live_job_ids(self) -> list[str]:
        if self.task_store is None:
            return []
        return self.task_store.live_scheduler_ids(self.config.scheduler_health_check_threshold)

    def _adopt(self, key: TaskInstanceKey, pod: dict) -> bool:
        name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
        try:
            self._started().label(name, namespace, {"airflow-worker": self.job_id})
        except (ApiException, Urllib3Error) as exc:
            log.warning("could not adopt pod %s/%s: %s", namespace, name, exc)
            return False
        self.running.add(key)
        self.launched[key] = (name, namespace, self.runtime.now())
        self.stats["adopted"] += 1
        return True

    def adopt_completed_pods(self, live_job_ids: Iterable[str] | None = None) -> None:
        """Clean up succeeded pods that dead schedulers left behind (never live schedulers').

        Live schedulers are those the task store knows as running with a recent heartbeat,
        unless ``live_job_ids`` names them."""
        if live_job_ids is None:
            live_job_ids = self._live_job_ids()
        exclude = sorted({self.job_id, *map(str, live_job_ids)})
        selector = (f"kubernetes_executor=True,airflow-worker notin ({','.join(exclude)}),"
                    f"{DONE_LABEL}!=True")
        for pod in self._started().list_pods(selector, "status.phase=Succeeded"):
            name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
            try:
                self._started().label(name, namespace, {"airflow-worker": self.job_id})
            except (ApiException, Urllib3Error):
                continue  # it will be found again next time
            self.stats["completed_adopted"] += 1

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
        self._retry_clean_ups()
        self.launcher = None

    def terminate(self) -> None:
        """Stop at once (the scheduler is going down hard): watchers are stopped, nothing flushed."""
        if self.launcher is not None:
            self.launcher.kill_watchers()
            self.launcher = None


def check_command(command: CommandType) -> None:
    if not is_task_run_command(command):
        raise InvalidCommand(command)


def error_message(exc: ApiException) -> str:
    """The Status message, or the raw body when it is not JSON (e.g. the 429 filter's text)."""
    body = exc.body.decode() if isinstance(exc.body, bytes) else (exc.body or "")
    try:
        return str(json.loads(body).get("message", body))
    except (ValueError, AttributeError):
        return body.strip() or str(exc.reason)


def retry_after_seconds(exc: ApiException) -> float | None:
    headers = exc.headers or {}
    value = headers.get("Retry-After") or headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
