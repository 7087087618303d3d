"""Creating pods (a mixin of KubernetesExecutor): a batch per loop, errors classified.

- 429, and 503 with Retry-After: throttling; creation pauses for Retry-After and the job keeps its
  place, without spending a publish retry.
- A refused connection or a 5xx: the API server is struggling; the job is re-queued (within
  ``task_publish_max_retries``) and creation pauses with a back-off that grows while it fails.
- 409 AlreadyExists for the try's fixed pod name: confirmed with a GET before it is trusted (an
  earlier attempt landed and its answer was lost, or the 409 is wrong).
- 409 Conflict, 410, quota (403 exceeded quota): re-queued within ``task_publish_max_retries``.
- Anything else (400, 403, 404, 422): the try fails.

With ``async_pod_creation`` the batch's creates are sent concurrently, at most
``pod_creation_max_concurrency`` at a time (0: the whole batch), and their answers handled in
order; as upstream, a 429 in mid-batch cannot stop the burst already sent.
"""

from __future__ import annotations

import json
import logging

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from .launcher import KubeJob
from .podgen import PodMutationHookError, PodReconciliationError

log = logging.getLogger(__name__)

THROTTLED = (429, 503)                 # back off for Retry-After, without spending a retry
RETRYABLE = (409, 410, 500, 502, 504)  # re-queue while task_publish_max_retries allows
SERVER_TROUBLE = (500, 502, 503, 504)  # the API server is struggling: pause creation a while


class Publishing:
    """Needs from its executor: ``config``, ``runtime``, ``task_queue``, ``running``, ``launched``,
    ``jobs``, ``publish_retries``, ``create_backoff``, ``stats``, ``fail``, ``_started()``,
    ``_key_of(pod)`` and ``_sync_deadline``."""

    def _create_pods(self) -> None:
        if not self.create_backoff.ready():
            return
        batch = self._next_batch()
        if self.config.async_pod_creation:
            outcomes = self._create_concurrently(batch)
        else:
            outcomes = (self._create_one(job) for job in batch)
        for job, (pod, error) in zip(batch, outcomes):
            if not self._handle_create(job, pod, error):
                self.task_queue.extendleft(reversed(batch[batch.index(job) + 1:]))  # not sent: keep their places
                return

    def _next_batch(self) -> list[KubeJob]:
        batch = []
        while self.task_queue and len(batch) < self.config.worker_pods_creation_batch_size:
            job = self.task_queue.popleft()
            if job.key in self.running:  # else failed or revoked while waiting
                batch.append(job)
        return batch

    def _create_one(self, job: KubeJob) -> tuple[object, Exception | None]:
        if self.runtime.now() >= self._sync_deadline:   # out of time this loop: not sent
            return None, TimeoutError("sync budget spent")
        try:
            return self._started().create(job), None
        except (ApiException, PodReconciliationError, PodMutationHookError, Urllib3Error) as exc:
            return None, exc

    def _create_concurrently(self, batch: list[KubeJob]) -> list[tuple[object, Exception | None]]:
        limit = self.config.pod_creation_max_concurrency or len(batch) or 1
        outcomes: list = [None] * len(batch)

        def create(i: int) -> None:
            try:
                outcomes[i] = (self._started().create(batch[i]), None)
            except (ApiException, PodReconciliationError, PodMutationHookError, Urllib3Error) as exc:
                outcomes[i] = (None, exc)

        for start in range(0, len(batch), limit):
            end = min(start + limit, len(batch))
            handles = [self.runtime.spawn(create, i, name=f"create-{i}") for i in range(start, end)]
            for handle in handles:
                handle.join()
        self.stats["concurrent_creates"] += len(batch)
        return outcomes

    def _handle_create(self, job: KubeJob, pod, error: Exception | None) -> bool:
        """Act on one create's answer; False when creation should pause for this loop."""
        if isinstance(error, TimeoutError):
            return False
        if isinstance(error, ApiException):
            if error.status == 409 and "already exists" in error_message(error):
                return self._confirm_existing(job)
            return self._publish_failed(job, error)
        if isinstance(error, (PodReconciliationError, PodMutationHookError)):
            self.fail(job.key, f"could not build the pod: {error}")
            return True
        if isinstance(error, Urllib3Error):
            return self._server_trouble(job, f"connection error: {type(error).__name__}: {error}")
        self._launched(job, pod.metadata.namespace)
        return True

    def _launched(self, job: KubeJob, namespace: str) -> None:
        self.launched[job.key] = (job.pod_name, namespace, self.runtime.now())
        self.jobs[job.key] = job
        self.publish_retries.pop(job.key, None)
        self.create_backoff.succeeded()
        self.stats["pods_created"] += 1

    def _confirm_existing(self, job: KubeJob) -> bool:
        """A 409 AlreadyExists for our try's fixed pod name: an earlier attempt landed (its answer
        was lost) only if the pod is there and is this try's. Look before trusting it."""
        namespace = self.config.namespace
        try:
            pod = self._started().get(job.pod_name, namespace)
        except ApiException as exc:
            if exc.status != 404:
                return self._server_trouble(job, f"could not confirm 409 AlreadyExists: {exc.status}")
            self.stats["phantom_conflicts"] += 1
            return self._retry_or_fail(job, "409 AlreadyExists for a pod that does not exist")
        except Urllib3Error as exc:
            return self._server_trouble(job, f"could not confirm 409 AlreadyExists: {type(exc).__name__}")
        if self._key_of(pod) != job.key:
            self.fail(job.key, f"pod name {namespace}/{job.pod_name} is taken by another pod")
            return True
        self.stats["confirmed_existing"] += 1
        self._launched(job, namespace)
        return True

    def _server_trouble(self, job: KubeJob, why: str) -> bool:
        """A refused connection or a 5xx: keep the job, and pause creation with a growing back-off."""
        pause = self.create_backoff.failed()
        log.warning("pod creation paused for %.0fs after %s", pause, why)
        self._retry_or_fail(job, why)
        return False

    def _publish_failed(self, job: KubeJob, exc: ApiException) -> bool:
        message, status = error_message(exc), exc.status
        self.stats[f"publish_{status}"] += 1
        if status in THROTTLED:
            retry_after = retry_after_seconds(exc)
            if status == 429 or retry_after is not None:
                self.create_backoff.pause_for(retry_after or 0)
                self.task_queue.appendleft(job)  # not its fault: keep its place
                return False
        if status in SERVER_TROUBLE:
            return self._server_trouble(job, f"{status}: {message}")
        if (status == 403 and "exceeded quota" in message) or status in RETRYABLE:
            return self._retry_or_fail(job, f"{status}: {message}")
        self.fail(job.key, f"pod creation failed with {status}: {message}")
        return True

    def _retry_or_fail(self, job: KubeJob, why: str) -> bool:
        limit = self.config.task_publish_max_retries
        if limit == -1 or self.publish_retries[job.key] < limit:
            self.publish_retries[job.key] += 1
            self.task_queue.append(job)
            log.info("re-queueing %s after %s (attempt %d)", job.key, why, self.publish_retries[job.key])
        elif self._landed(job):   # the create's answer was lost, but the pod is there: it runs
            self.stats["confirmed_existing"] += 1
            self._launched(job, self.config.namespace)
        else:
            self.publish_retries.pop(job.key, None)
            self.fail(job.key, f"pod creation failed: {why}")
        return True

    def _landed(self, job: KubeJob) -> bool:
        """Did a create that got no clear answer (a dropped connection, a timeout, a 5xx) land after
        all? Failing the try without looking would leave its pod running a task declared failed."""
        try:
            pod = self._started().get(job.pod_name, self.config.namespace)
        except (ApiException, Urllib3Error):
            return False
        return self._key_of(pod) == job.key


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
