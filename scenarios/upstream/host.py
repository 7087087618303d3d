"""One world's upstream host: Airflow's configuration, its metadata database, and the executors.

``UpstreamHost(world)`` makes the world's scheduler jobs run upstream's KubernetesExecutor:
it checks and installs the substitutions, gives the world a fresh metadata database, writes the
scenario's executor options into Airflow's configuration (``[kubernetes_executor]``, ``[core]``,
``[scheduler]``) with ``client_factory`` pointing at the world's cluster, and builds one
``UpstreamExecutor`` per scheduler job.
"""

from __future__ import annotations

import json
import logging

from executor import ExecutorConfig

from .adapter import UpstreamExecutor
from .environment import fresh_database
from .metadb import MetadataMirror
from .simulation import Simulation, activate
from .substitutions import install

log = logging.getLogger(__name__)

UNLIMITED = 1_000_000   # parallelism 0 (unlimited) as Airflow 3 can be told it
CLIENT_FACTORY = "scenarios.upstream.simulation.kube_client"

# kubesim's options that are Airflow's, by section (the rest of ExecutorConfig is kubesim's own).
CORE = ("parallelism",)
SCHEDULER = ("orphaned_tasks_check_interval", "task_queued_timeout", "task_queued_timeout_check_interval",
             "num_stuck_in_queued_retries", "scheduler_health_check_threshold")
NOT_UPSTREAM = ("worker_pods_pending_timeout", "worker_pods_pending_timeout_check_interval",
                "worker_pods_pending_timeout_batch_size", "worker_pods_queued_check_interval",
                "watch_timeout_seconds", "watch_request_timeout", "raw_watch_events")
NOT_SIMULATED = {"async_pod_creation": "its concurrent creates go through kubernetes_asyncio (aiohttp), "
                                       "which does not pass through kubesim's urllib3 seam"}

POD_TEMPLATE = """\
apiVersion: v1
kind: Pod
metadata:
  name: placeholder-name
spec:
  containers:
    - name: base
      image: apache/airflow:{version}
      imagePullPolicy: IfNotPresent
  restartPolicy: Never
"""


class UpstreamConfigError(ValueError):
    """A scenario option upstream's executor cannot be run with here."""


def cfg_value(value) -> str:
    """A value as an airflow.cfg file spells it."""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return "" if value is None else str(value)


def ignored_options(config: ExecutorConfig) -> list[str]:
    """kubesim's own options the scenario sets to other than their defaults: upstream has none of
    them (the 2.2-era pending checks, kubesim's watch settings), so its run goes without."""
    default = ExecutorConfig()
    return [name for name in NOT_UPSTREAM if getattr(config, name) != getattr(default, name)]


def set_option(section: str, name: str, value: str) -> None:
    """Set an option in both of Airflow's configurations: the executor reads core's, the provider's
    client and pod code read the task SDK's."""
    from airflow.configuration import conf as core_conf
    from airflow.providers.common.compat.sdk import conf as sdk_conf
    for conf in {id(core_conf): core_conf, id(sdk_conf): sdk_conf}.values():
        conf.set(section, name, value)


class UpstreamHost:
    """Makes a world's schedulers run upstream's executor (one host per world)."""

    def __init__(self, world, seed: int):
        self.versions = install()
        config = world.config
        for name, why in NOT_SIMULATED.items():
            if getattr(config, name):
                raise UpstreamConfigError(f"executor option {name}: upstream's executor cannot be simulated with "
                                          f"it on ({why}); remove it for --executor airflow")
        if config.parallelism == 0:   # Airflow 3 refuses 0; a cap no run can reach is the same as none
            config = config.replace(parallelism=UNLIMITED)
            log.warning("executor option parallelism 0 (unlimited) is %d for upstream's executor: Airflow 3 "
                        "refuses 0", UNLIMITED)
        self.ignored = ignored_options(config)
        for name in self.ignored:
            log.warning("executor option %s is kubesim's own, not upstream's: the airflow executor runs without it",
                        name)
        self.simulation = Simulation(world.cluster, seed, config.api_client_retry_configuration)
        activate(self.simulation)
        fresh_database()
        self._configure(config)
        self.mirror = MetadataMirror(world.store, self.simulation.rng, world.cluster.epoch)

    def _configure(self, config: ExecutorConfig) -> None:
        options = config.model_dump()
        template = self.simulation.scratch / "pod_template.yaml"
        template.write_text(POD_TEMPLATE.format(version=self.versions["apache-airflow"]), encoding="utf-8")
        for name, value in options.items():
            if name in NOT_UPSTREAM:
                continue
            section = "core" if name in CORE else "scheduler" if name in SCHEDULER else "kubernetes_executor"
            set_option(section, name, cfg_value(value))
        if not config.pod_template_file:
            set_option("kubernetes_executor", "pod_template_file", str(template))
        set_option("kubernetes_executor", "client_factory", CLIENT_FACTORY)
        set_option("kubernetes_executor", "async_client_factory", "")

    def make_executor(self, job_id: str) -> UpstreamExecutor:
        return UpstreamExecutor(self.simulation, self.mirror, job_id)
