"""``GET .../pods/NAME/log``: a container's log as the kubelet serves it through the API server.

The lines come from a log source the cluster model provides (``model.logs``): called with the
pod, the container and ``previous``, it returns the run's lines and whether the container still
runs, or raises ValueError with the kubelet's reason there is no log (answered 400). The options
are PodLogOptions': ``container``, ``follow``, ``previous``, ``timestamps``, ``tailLines``,
``limitBytes``, ``sinceSeconds``, ``sinceTime``. With ``follow`` the answer is a chunked stream that
gets each new line as the container writes it and ends when the container stops.

``exec``, ``attach`` and ``portforward`` get a Status that says kubesim does not serve them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Callable

from . import status as errors
from .query import META_GROUP, parse_bool, parse_int
from .store import Change, ResourceStore
from .stream import Stream

LOG_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
PLAIN_TEXT = {"Content-Type": "text/plain"}
UNSERVED = {"exec": "run commands in", "attach": "attach to", "portforward": "forward ports to"}

LogSource = Callable[[dict, str, bool], object]   # -> .lines ((time, text), ...), .running


def unserved(subresource: str, name: str) -> errors.ApiError:
    """The answer to exec, attach and portforward: kubesim has no processes to reach."""
    return errors.ApiError(405, "MethodNotAllowed",
                           f"kubesim does not serve pods/{subresource}: pod {errors.go_quote(name)} is simulated, "
                           f"there is no process to {UNSERVED[subresource]} (pods/log serves what its containers "
                           f"wrote)", {"name": name, "kind": "pods"})


@dataclass
class LogOptions:
    container: str
    follow: bool
    previous: bool
    timestamps: bool
    tail: int | None
    limit: int | None
    since: datetime | None

    @classmethod
    def parse(cls, query: dict, pod: dict, now: datetime) -> "LogOptions":
        causes = []
        tail = parse_int(query.get("tailLines"), "tailLines")
        limit = parse_int(query.get("limitBytes"), "limitBytes")
        seconds = parse_int(query.get("sinceSeconds"), "sinceSeconds")
        for field, value, least in (("tailLines", tail, 0), ("limitBytes", limit, 1), ("sinceSeconds", seconds, 1)):
            if value is not None and value < least:
                causes.append({"reason": "FieldValueInvalid", "field": field, "message":
                               f"Invalid value: {value}: must be greater than {'or equal to ' if least == 0 else ''}0"})
        since_time = query.get("sinceTime")
        if seconds is not None and since_time:
            causes.append({"reason": "FieldValueForbidden", "field": "",
                           "message": "Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified"})
        if causes:
            raise errors.invalid("PodLogOptions", "", causes, META_GROUP)
        since = now - timedelta(seconds=seconds) if seconds is not None else _parse_time(since_time)
        return cls(container_of(pod, query.get("container") or ""), bool(parse_bool(query, "follow")),
                   bool(parse_bool(query, "previous")), bool(parse_bool(query, "timestamps")), tail, limit, since)

    def render(self, lines) -> bytes:
        if self.since is not None:
            lines = [line for line in lines if (_parse_time(line[0]) or self.since) >= self.since]
        if self.tail is not None:
            lines = lines[len(lines) - self.tail:] if self.tail else []
        text = "".join(f"{when} {line}\n" if self.timestamps else f"{line}\n" for when, line in lines).encode()
        return text[:self.limit] if self.limit is not None else text


def container_of(pod: dict, container: str) -> str:
    """validateContainer: the one container, or the one named (400 otherwise, in its words)."""
    name = pod["metadata"]["name"]
    names = [c.get("name", "") for c in pod["spec"].get("containers") or []]
    inits = [c.get("name", "") for c in pod["spec"].get("initContainers") or []]
    if not container:
        if len(names) == 1:
            return names[0]
        message = f"a container name must be specified for pod {name}, choose one of: [{' '.join(names)}]"
        if inits:
            message += f" or one of the init containers: [{' '.join(inits)}]"
        raise errors.bad_request(message)
    if container not in names and container not in inits:
        raise errors.bad_request(f"container {container} is not valid for pod {name}")
    return container


def pod_log(pod: dict, query: dict, source: LogSource, now: datetime, kernel, pods: ResourceStore):
    """The answer to one log request: a text Reply, or a (stream, follower) to send as it grows."""
    options = LogOptions.parse(query, pod, now)
    try:
        log = source(pod, options.container, options.previous)
    except ValueError as unavailable:
        raise errors.bad_request(str(unavailable)) from None
    if not (options.follow and log.running):
        return options.render(list(log.lines)), None
    stream = Stream(kernel, f"log {pod['metadata']['name']}/{options.container}")
    stream.write_raw(LOG_HEAD)
    follower = LogFollower(pods, pod, options, source, stream)
    follower.send(log)
    return stream, follower


class LogFollower:
    """A followed log: each new line goes out as a chunk; the stream ends when the run does."""

    def __init__(self, pods: ResourceStore, pod: dict, options: LogOptions, source: LogSource, stream: Stream):
        meta = pod["metadata"]
        self.key, self.uid = (meta["namespace"], meta["name"]), meta["uid"]
        self.pods, self.options, self.source, self.stream = pods, options, source, stream
        self.sent_lines = 0
        self.sent_bytes = 0
        self.restarts = restarts_of(pod, options.container)  # a restart ends the run followed
        self.max_pending: int | None = None   # (the HTTP door bounds what a slow reader may queue)
        self.open = True
        pods.listeners.append(self._on_change)
        stream.on_client_close.append(self.close)

    def send(self, log) -> None:
        lines = list(log.lines)
        if not self.sent_lines:
            text = self.options.render(lines)  # tail, since and timestamps apply to what is there now
        else:
            text = LogOptions(self.options.container, True, False, self.options.timestamps, None, None,
                              None).render(lines[self.sent_lines:])
        self.sent_lines = len(lines)
        if self.options.limit is not None:
            text = text[:max(0, self.options.limit - self.sent_bytes)]
        if text:
            self.sent_bytes += len(text)
            self.stream.write_chunk(text)
        if not log.running or (self.options.limit is not None and self.sent_bytes >= self.options.limit):
            self.stream.end()
            self.close()

    def _on_change(self, change: Change) -> None:
        meta = change.obj["metadata"]
        if (meta.get("namespace"), meta["name"]) != self.key or meta.get("uid") != self.uid:
            return
        if change.type == "DELETED":
            self.stream.end()
            self.close()
            return
        restarted = restarts_of(change.obj, self.options.container) != self.restarts
        try:  # after a restart, the run followed is the previous one: send how it ended
            log = self.source(change.obj, self.options.container, restarted)
            if restarted:
                log = _Ended(log.lines)
        except ValueError:  # the container went back to waiting: this run is over
            self.stream.end()
            self.close()
            return
        if len(log.lines) != self.sent_lines or not log.running:
            self.send(log)

    def close(self) -> None:
        if self.open:
            self.open = False
            self.pods.listeners.remove(self._on_change)


@dataclass(frozen=True)
class _Ended:
    lines: tuple
    running: bool = False


def restarts_of(pod: dict, container: str) -> int:
    statuses = pod.get("status", {}).get("containerStatuses") or []
    return next((s.get("restartCount", 0) for s in statuses if s.get("name") == container), 0)


def _parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise errors.bad_request(f'parsing time "{text}" as "2006-01-02T15:04:05Z07:00": cannot parse') from None
