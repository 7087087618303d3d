"""The pod launcher (the seed's AirflowKubernetesScheduler): creates, deletes and relabels pods
and keeps one watcher per namespace alive."""

from __future__ import annotations

import json
import logging
import random
from collections import Counter
from typing import NamedTuple

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from .config import ExecutorConfig
from .events import DONE_LABEL
from .keys import CommandType, TaskInstanceKey
from .podgen import construct_pod, create_unique_id, load_pod_template, random_suffix
from .runtime import Runtime
from .watcher import ALL_NAMESPACES, JobWatcher

log = logging.getLogger(__name__)

WATCHER_STOP_BUDGET = 20.0  # seconds shared by all watchers to stop before they are abandoned


class KubeJob(NamedTuple):
    key: TaskInstanceKey
    command: CommandType
    pod_override: object
    pod_name: str


class PodLauncher:
    def __init__(self, config: ExecutorConfig, kube: client.CoreV1Api, runtime: Runtime,
                 scheduler_job_id: str, resource_versions: dict[str, str], mutation_hook=None):
        self.config, self.kube, self.runtime = config, kube, runtime
        self.job_id = str(scheduler_job_id)
        self.resource_versions = resource_versions
        self.mutation_hook = mutation_hook
        self.base_pod = load_pod_template(config.pod_template_file, config.worker_image)
        self.results = runtime.queue("watcher results")
        self.watchers: dict[str, JobWatcher] = {}
        self.restarts = 0
        self.stats = Counter()   # the executor hands its own: watcher_deaths
        self.started: list[JobWatcher] = []

    # -- watchers ------------------------------------------------------------------------------

    def namespaces(self) -> list[str]:
        if not self.config.multi_namespace_mode:
            return [self.config.namespace]
        return list(self.config.multi_namespace_mode_namespace_list) or [ALL_NAMESPACES]

    def start(self) -> None:
        for namespace in self.namespaces():
            self.watchers[namespace] = self._start_watcher(namespace, self.resource_versions.get(namespace))

    def _start_watcher(self, namespace: str, resource_version: str | None) -> JobWatcher:
        watcher = JobWatcher(namespace, self.job_id, self.kube, self.config, self.runtime,
                             self.results, resource_version)
        watcher.start()
        self.started.append(watcher)
        return watcher

    def health_check(self) -> None:
        """Restart a dead watcher from the last resourceVersion it saw (not from "0")."""
        for namespace, watcher in self.watchers.items():
            if not watcher.is_alive():
                resume = watcher.resource_version or self.resource_versions.get(namespace)
                reason = getattr(watcher.handle, "exception", None)
                log.error("watcher for %s died (%r); restarting from resourceVersion %s",
                          namespace, reason, resume)
                self.restarts += 1
                self.stats["watcher_deaths"] += 1
                self.watchers[namespace] = self._start_watcher(namespace, resume)

    def kill_watchers(self) -> None:
        """Stop every watcher at once, without waiting (the process is going down hard)."""
        for watcher in self.watchers.values():
            watcher.stop()
            if watcher.handle is not None:
                watcher.handle.kill()

    def stop_watchers(self) -> None:
        for watcher in self.watchers.values():
            watcher.stop()
        deadline = self.runtime.now() + WATCHER_STOP_BUDGET
        for watcher in self.watchers.values():
            if watcher.handle is not None and not watcher.handle.join(max(0.0, deadline - self.runtime.now())):
                watcher.handle.kill()

    # -- pods ----------------------------------------------------------------------------------

    def namespace_for(self) -> str:
        return self.config.namespace

    def create(self, job: KubeJob) -> client.V1Pod:
        pod = construct_pod(key=job.key, command=job.command, scheduler_job_id=self.job_id,
                            namespace=self.namespace_for(), pod_id=job.pod_name, base_pod=self.base_pod,
                            pod_override=job.pod_override, mutation_hook=self.mutation_hook)
        return self.kube.create_namespaced_pod(pod.metadata.namespace, pod, **self._request_args())

    def delete(self, name: str, namespace: str) -> None:
        try:
            self.kube.delete_namespaced_pod(name, namespace, **self.config.delete_option_kwargs,
                                            **self._request_args())
        except ApiException as exc:
            if exc.status != 404:  # already gone is what we wanted
                raise

    def get(self, name: str, namespace: str) -> dict:
        """One pod, as a plain dict (raises ApiException 404 when there is none)."""
        response = self.kube.read_namespaced_pod(name, namespace, _preload_content=False, **self._request_args())
        return json.loads(response.data)

    def label(self, name: str, namespace: str, labels: dict[str, str]) -> None:
        """A label-only strategic merge patch (a whole-pod patch is refused with 422)."""
        self.kube.patch_namespaced_pod(name, namespace, {"metadata": {"labels": labels}},
                                       **self._request_args())

    def mark_done(self, name: str, namespace: str) -> None:
        try:
            self.label(name, namespace, {DONE_LABEL: "True"})
        except ApiException as exc:
            if exc.status != 404:  # already gone (e.g. deleted at the pending timeout): done
                raise

    def list_pods(self, label_selector: str, field_selector: str | None = None,
                  limit: int | None = None) -> list[dict]:
        """Pods in every namespace this executor serves, as plain dicts."""
        pods: list[dict] = []
        kwargs = {"label_selector": label_selector, "_preload_content": False, **self._request_args()}
        if field_selector:
            kwargs["field_selector"] = field_selector
        if limit:
            kwargs["limit"] = limit
        for namespace in self.namespaces():
            if namespace == ALL_NAMESPACES:
                response = self.kube.list_pod_for_all_namespaces(**kwargs)
            else:
                response = self.kube.list_namespaced_pod(namespace, **kwargs)
            pods.extend(json.loads(response.data).get("items") or [])
        return pods

    def _request_args(self) -> dict:
        return {k: v for k, v in self.config.kube_client_request_args.items() if k != "timeout_seconds"}


def new_pod_name(key: TaskInstanceKey, rng: random.Random) -> str:
    return create_unique_id(key.dag_id, key.task_id, random_suffix(rng))
