"""Clean-up of finished pods: each pod deleted (or labelled done) once, without stalling the loop.

A finished pod is queued here and cleaned up from ``sync`` within the loop's time budget, so a
slow API server (seconds per DELETE) cannot hold the scheduler loop past its health threshold.
A clean-up that fails is kept and retried later, after a back-off that grows while the API server
keeps failing. A pod that was cleaned up, seen deleted, or adopted away gets no further call.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Callable, NamedTuple

from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError as Urllib3Error

from .backoff import Backoff
from .runtime import Runtime

log = logging.getLogger(__name__)

Pod = tuple[str, str]   # (namespace, name)


class CleanUp(NamedTuple):
    delete: bool        # False: label it done instead


class CleanUps:
    def __init__(self, runtime: Runtime, delete: Callable[[str, str], None],
                 mark_done: Callable[[str, str], None], stats: Counter):
        self.runtime = runtime
        self._delete, self._mark_done = delete, mark_done
        self.backlog: dict[Pod, CleanUp] = {}
        self.done: set[Pod] = set()          # cleaned up, seen deleted, or adopted away: hands off
        self.deleted_by_us: set[Pod] = set()  # awaiting the DELETED echo of our own delete
        self.backoff = Backoff(runtime)
        self.stats = stats   # the executor's: pods_deleted, pods_marked_done, clean_up_errors

    def __len__(self) -> int:
        return len(self.backlog)

    def schedule(self, pod: Pod, delete: bool) -> None:
        """Clean ``pod`` up from the next ``run`` on (nothing, if it is already done with)."""
        if pod not in self.done:
            self.backlog[pod] = CleanUp(delete)

    def forget(self, pod: Pod) -> None:
        """The pod is gone or no longer ours: no call may go to it any more."""
        self.backlog.pop(pod, None)
        self.done.add(pod)

    def run(self, deadline: float) -> None:
        """Work through the backlog, oldest first, until ``deadline`` or the first failure."""
        if not self.backoff.ready():
            return
        for pod, clean_up in list(self.backlog.items()):
            if self.runtime.now() >= deadline:
                return
            if not self._clean(pod, clean_up):
                return

    def delete_now(self, pod: Pod) -> None:
        """Delete at once (a pending timeout, a revoked try); raises what the API raised."""
        if pod in self.done:
            return
        self._delete(pod[1], pod[0])
        self.deleted_by_us.add(pod)
        self.forget(pod)
        self.stats["pods_deleted"] += 1

    def _clean(self, pod: Pod, clean_up: CleanUp) -> bool:
        namespace, name = pod
        try:
            if clean_up.delete:
                self._delete(name, namespace)
                self.deleted_by_us.add(pod)
            else:
                self._mark_done(name, namespace)
        except (ApiException, Urllib3Error) as exc:
            self.stats["clean_up_errors"] += 1
            pause = self.backoff.failed()
            log.warning("could not clean up pod %s/%s (retrying in %.0fs): %s", namespace, name, pause,
                        str(exc).splitlines()[0])
            return False
        self.backoff.succeeded()
        self.stats["pods_deleted" if clean_up.delete else "pods_marked_done"] += 1
        self.forget(pod)
        return True
