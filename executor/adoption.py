"""Adoption: taking over the pods of dead schedulers (a mixin of KubernetesExecutor).

Upstream's shape is kept: a label-only patch moves a live pod to this scheduler (#28776), and
completed pods that dead schedulers left behind are relabelled so that this scheduler cleans them
up, never live schedulers' pods (#66400). Improved here:

* A pod whose label patch fails for a transient reason (a 5xx, a dropped connection, a 429) is
  not handed back for a reset while it still runs: its try is claimed and the patch retried on
  later syncs ("adopt later"). Only a pod that is gone (404) is given up, and its try reset.
* Failed pods are cleaned up too, not only Succeeded ones.
"""

from __future__ import annotations

import logging
from typing import Iterable

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from .backoff import Backoff
from .base import AdoptionUnavailable
from .events import DONE_LABEL
from .keys import TaskInstanceKey

log = logging.getLogger(__name__)

COMPLETED_PHASES = "status.phase!=Pending,status.phase!=Running,status.phase!=Unknown"


class Adoption:
    """Needs from its executor: ``job_id``, ``running``, ``launched``, ``task_store``, ``config``,
    ``stats``, ``runtime``, ``_started()`` (the launcher) and ``_key_of(pod)``."""

    def _init_adoption(self) -> None:
        self.adoption_pending: dict[TaskInstanceKey, tuple[str, str]] = {}  # key -> (pod, namespace)
        self.adoption_backoff = Backoff(self.runtime)

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
        try:  # every listing first: a failure then leaves everything as it was
            listings = {old_job: launcher.list_pods(
                f"kubernetes_executor=True,airflow-worker={old_job},{DONE_LABEL}!=True", "status.phase!=Succeeded")
                for old_job in by_job}
        except (ApiException, Urllib3Error) as exc:
            raise AdoptionUnavailable(f"cannot list the dead schedulers' pods: {str(exc).splitlines()[0]}") from exc
        for old_job, job_tis in by_job.items():
            pods_by_key = {self._key_of(p): p for p in listings[old_job]}
            for ti in job_tis:
                pod = pods_by_key.get(ti.key)
                if pod is None or not self._adopt(ti.key, pod["metadata"]["name"], pod["metadata"]["namespace"]):
                    not_adopted.append(ti)
        failed = self.adopt_completed_pods_safely()
        if failed and not by_job and not not_adopted:   # a sweep for leftovers only: say it is not done
            raise AdoptionUnavailable(f"{failed} completed pod(s) of ended schedulers could not be relabelled yet")
        return not_adopted

    def adopt_completed_pods_safely(self) -> int:
        """``adopt_completed_pods`` without letting an unreachable API server escape; the pods it
        could not relabel (they will be found again next time)."""
        try:
            return self.adopt_completed_pods()
        except (ApiException, Urllib3Error) as exc:
            self.stats["periodic_check_errors"] += 1
            log.warning("adopt_completed_pods failed, trying again later: %s", str(exc).splitlines()[0])
            return 1

    def _adopt(self, key: TaskInstanceKey, name: str, namespace: str) -> bool:
        """Relabel one live pod; False only when the pod is gone (its try may be reset)."""
        self.running.add(key)
        if not self.adoption_backoff.ready():  # the server just failed us: no call until the pause ends
            self.adoption_pending[key] = (name, namespace)
            return True
        try:
            self._started().label(name, namespace, {"airflow-worker": self.job_id})
        except ApiException as exc:
            if exc.status == 404:
                self.running.discard(key)
                self.adoption_pending.pop(key, None)
                log.info("pod %s/%s is gone: its try cannot be adopted", namespace, name)
                return False
            return self._adopt_later(key, name, namespace, exc)
        except Urllib3Error as exc:
            return self._adopt_later(key, name, namespace, exc)
        self.adoption_pending.pop(key, None)
        self.adoption_backoff.succeeded()
        self.launched[key] = (name, namespace, self.runtime.now())
        self.stats["adopted"] += 1
        return True

    def _adopt_later(self, key: TaskInstanceKey, name: str, namespace: str, exc: Exception) -> bool:
        """Claim the try (its pod may still run: a reset would start a second copy) and retry."""
        pause = self.adoption_backoff.failed()
        log.warning("could not adopt pod %s/%s yet (retrying in %.0fs): %s", namespace, name, pause,
                    str(exc).splitlines()[0])
        self.adoption_pending[key] = (name, namespace)
        self.stats["adoption_retries"] += 1
        return True

    def retry_adoptions(self, deadline: float) -> None:
        """Patch the pods whose adoption failed for a transient reason, within the loop's budget."""
        for key, (name, namespace) in list(self.adoption_pending.items()):
            if self.runtime.now() >= deadline or not self.adoption_backoff.ready():
                return
            if not self._adopt(key, name, namespace):
                self.fail(key, f"pod {namespace}/{name} vanished before it could be adopted")

    def _live_job_ids(self) -> list[str]:
        if self.task_store is None:
            return []
        return self.task_store.live_scheduler_ids(self.config.scheduler_health_check_threshold)

    def adopt_completed_pods(self, live_job_ids: Iterable[str] | None = None) -> int:
        """Clean up finished (Succeeded or Failed) pods that dead schedulers left behind, never
        live schedulers' pods.

        Live schedulers are those the task store knows as running with a recent heartbeat,
        unless ``live_job_ids`` names them. Returns how many it could not relabel."""
        if live_job_ids is None:
            live_job_ids = self._live_job_ids()
        exclude = sorted({self.job_id, *map(str, live_job_ids)})
        selector = (f"kubernetes_executor=True,airflow-worker notin ({','.join(exclude)}),"
                    f"{DONE_LABEL}!=True")
        failed = 0
        for pod in self._started().list_pods(selector, COMPLETED_PHASES):
            name, namespace = pod["metadata"]["name"], pod["metadata"]["namespace"]
            try:
                self._started().label(name, namespace, {"airflow-worker": self.job_id})
            except (ApiException, Urllib3Error):
                failed += 1   # it will be found again next time
                continue
            self.stats["completed_adopted"] += 1
        return failed
