"""executor: a standalone KubernetesExecutor (Airflow-style) and its scheduler host.

Written against ``kubernetes.client`` and an injected Runtime; knows nothing of simulation.
"""

from .config import ConfigError, ExecutorConfig
from .host import TaskInstance, TaskStore
from .scheduler_job import QueuedTimeout, SchedulerJob
from .keys import InvalidCommand, State, TaskInstanceKey
from .kubernetes_executor import KubernetesExecutor
from .runtime import Runtime, ThreadedRuntime

__all__ = ["KubernetesExecutor", "ExecutorConfig", "ConfigError", "SchedulerJob", "TaskInstance", "QueuedTimeout",
           "TaskStore", "TaskInstanceKey", "State", "InvalidCommand", "Runtime", "ThreadedRuntime"]
