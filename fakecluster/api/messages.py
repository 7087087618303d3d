"""A request to the API server and its answers: the ``Request``, the ``Route`` its path addresses,
a ``Reply`` or a ``WatchReply`` (a streaming body)."""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from .status import ApiError
from .store import ResourceStore
from .strategies import Strategy
from .stream import Stream
from .watch import Watcher
from .wire import dumps


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes | None = None
    parts: list[str] = field(init=False, repr=False)  # the path's segments, for gateway and router
    warnings: list[str] = field(default_factory=list, repr=False)  # sent back as Warning headers

    @classmethod
    def from_url(cls, method: str, url: str, headers: dict | None = None, body: bytes | None = None):
        path, _, query = url.partition("?")
        if "://" in path:
            path = "/" + path.split("/", 3)[3] if path.count("/") >= 3 else "/"
        if "%" in path:
            path = unquote(path)
        return cls(method.upper(), path, dict(parse_qsl(query, keep_blank_values=True)) if query else {},
                   {k.lower(): v for k, v in (headers or {}).items()}, body)

    def __post_init__(self):
        self.parts = list(filter(None, self.path.split("/")))


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/json"})


@dataclass
class WatchReply:
    """A streaming answer: a watch, or a followed log (its ``watcher`` is then the LogFollower)."""
    stream: Stream
    watcher: Watcher
    content_type: str = "application/json"


@dataclass
class Route:
    store: ResourceStore
    strategy: Strategy
    namespace: str | None
    name: str | None
    subresource: str | None


def json_reply(status: int, obj: dict) -> Reply:
    return Reply(status, dumps(obj))


def error_reply(error: ApiError) -> Reply:
    return Reply(error.code, error.body(), {"Content-Type": error.content_type(), **error.headers})
