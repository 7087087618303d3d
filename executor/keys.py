"""Task-instance identity, task states and the shape of a worker command."""

from __future__ import annotations

from typing import NamedTuple


class TaskInstanceKey(NamedTuple):
    """One attempt (``try_number``) of one task instance; ``map_index`` -1 means "not mapped"."""

    dag_id: str
    task_id: str
    run_id: str
    try_number: int = 1
    map_index: int = -1

    @property
    def primary(self) -> tuple[str, str, str, int]:
        """The task instance across all its attempts: the key without ``try_number``."""
        return self.dag_id, self.task_id, self.run_id, self.map_index

    def with_try_number(self, try_number: int) -> TaskInstanceKey:
        return self._replace(try_number=try_number)


class State:
    """Task-instance states, spelled as Airflow stores them."""

    NONE = None
    SCHEDULED = "scheduled"
    QUEUED = "queued"
    RUNNING = "running"
    SUCCESS = "success"
    FAILED = "failed"
    UP_FOR_RETRY = "up_for_retry"
    UPSTREAM_FAILED = "upstream_failed"
    # Executor-internal, never stored: another scheduler took the pod over, so this executor
    # only forgets the task and reports nothing.
    ADOPTED = "adopted"


CommandType = list[str]

TASK_RUN_PREFIX: CommandType = ["airflow", "tasks", "run"]


def is_task_run_command(command: object) -> bool:
    """True for a list (or tuple) of arguments starting with ``airflow tasks run``."""
    return isinstance(command, (list, tuple)) and list(command[:3]) == TASK_RUN_PREFIX


class InvalidCommand(ValueError):
    """A worker command that is not ``airflow tasks run ...``."""

    def __init__(self, command: object) -> None:
        self.command = command
        super().__init__(
            f"invalid worker command {command!r}: expected a list of strings starting with "
            f"{TASK_RUN_PREFIX!r}, e.g. ['airflow', 'tasks', 'run', '<dag_id>', '<task_id>', '<run_id>']")
