"""The executor contract the scheduler drives: queue, heartbeat, slots and the event buffer."""

from __future__ import annotations

import heapq
import logging
import sys
from typing import Any

from .keys import CommandType, InvalidCommand, State, TaskInstanceKey

log = logging.getLogger(__name__)


class AdoptionUnavailable(RuntimeError):
    """Adoption could not look at the cluster now (the API server is unreachable): nothing was
    adopted and nothing may be reset; ask again later."""


class BaseExecutor:
    """Holds queued commands until there is a slot, then hands them to ``execute_async``.

    ``parallelism`` 0 means unlimited slots. ``running`` holds the keys with a live try;
    ``event_buffer`` holds (state, info) per key until the scheduler collects it.
    """

    def __init__(self, parallelism: int = 32):
        self.parallelism = parallelism
        self.queued_tasks: dict[TaskInstanceKey, tuple[CommandType, int, str | None, Any]] = {}
        self.running: set[TaskInstanceKey] = set()
        self.event_buffer: dict[TaskInstanceKey, tuple[str | None, Any]] = {}
        self.state_listeners: list = []  # called with (key, state, info) on every state change

    # -- what the scheduler calls --------------------------------------------------------------

    def queue_command(self, key: TaskInstanceKey, command: CommandType, priority: int = 1,
                      queue: str | None = None, executor_config: Any = None) -> None:
        if key in self.queued_tasks or key in self.running:
            log.info("could not queue %s: already queued or running", key)
            return
        self.queued_tasks[key] = (command, priority, queue, executor_config)

    def has_task(self, key: TaskInstanceKey) -> bool:
        return key in self.queued_tasks or key in self.running

    def has_pending_work(self) -> bool:
        """Whether stopping now would leave something undone."""
        return self.pending_work() > 0

    def pending_work(self) -> int:
        """How much stopping now would leave undone (live tries, by default)."""
        return len(self.running)

    @property
    def open_slots(self) -> int:
        """Queued commands that may start now: parallelism less what runs (0: no limit)."""
        if self.parallelism == 0:
            return len(self.queued_tasks) or 1
        return self.parallelism - len(self.running)

    @property
    def slots_available(self) -> int:
        """Tasks a scheduler may still queue here (Airflow's): parallelism less what runs or
        waits. A scheduler that queues only this many keeps the executor's queue, and every
        loop over it, as small as the parallelism, however much work is scheduled."""
        if self.parallelism == 0:
            return sys.maxsize
        return self.parallelism - len(self.running) - len(self.queued_tasks)

    def heartbeat(self) -> None:
        """Launch what the open slots allow, then let the executor catch up."""
        self.trigger_tasks(self.open_slots)
        self.sync()

    def trigger_tasks(self, open_slots: int) -> None:
        """Hand the highest-priority queued commands (first queued first among equals) to
        ``execute_async``; a command it refuses fails its try and frees the slot."""
        chosen = heapq.nlargest(max(open_slots, 0), self.queued_tasks.items(), key=lambda item: item[1][1])
        for key, (command, _priority, queue, executor_config) in chosen:
            del self.queued_tasks[key]
            self.running.add(key)
            try:
                self.execute_async(key, command, queue, executor_config)
            except InvalidCommand as exc:
                self.fail(key, str(exc))

    def get_event_buffer(self, dag_ids=None) -> dict[TaskInstanceKey, tuple[str | None, Any]]:
        """Hand over (and forget) the events, optionally only those of some DAGs."""
        if dag_ids is None:
            events, self.event_buffer = self.event_buffer, {}
            return events
        events = {k: v for k, v in self.event_buffer.items() if k.dag_id in dag_ids}
        for key in events:
            del self.event_buffer[key]
        return events

    # -- what executors call -------------------------------------------------------------------

    def change_state(self, key: TaskInstanceKey, state: str | None, info: Any = None) -> None:
        self.running.discard(key)
        self.event_buffer[key] = (state, info)
        for listener in self.state_listeners:
            listener(key, state, info)

    def fail(self, key: TaskInstanceKey, info: Any = None) -> None:
        self.change_state(key, State.FAILED, info)

    def success(self, key: TaskInstanceKey, info: Any = None) -> None:
        self.change_state(key, State.SUCCESS, info)

    def try_adopt_task_instances(self, tis: list) -> list:
        """Take over what other (dead) schedulers started; return the tries that could not be."""
        return list(tis)

    def revoke_task(self, key: TaskInstanceKey) -> None:
        """Forget a try the scheduler gave up on (stuck in queued); executors stop its work too."""
        self.queued_tasks.pop(key, None)
        self.running.discard(key)

    # -- what executors implement --------------------------------------------------------------

    def start(self) -> None:
        """Start the executor's background work."""

    def execute_async(self, key: TaskInstanceKey, command: CommandType, queue: str | None = None,
                      executor_config: Any = None) -> None:
        raise NotImplementedError

    def sync(self) -> None:
        raise NotImplementedError

    def end(self) -> None:
        raise NotImplementedError

    def terminate(self) -> None:
        raise NotImplementedError
