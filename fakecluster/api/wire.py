"""JSON on the wire: compact, as kube-apiserver writes it, and fast (the fake serialises every
object it stores or sends; the stdlib encoder was the largest cost of the simulation)."""

from __future__ import annotations

import orjson

# The object most recently encoded and its bytes. A write encodes its object twice in a row:
# once as the watch event every watcher shares, once as the reply body (the same dict, never
# mutated: the store makes new dicts on every write). Holding it keeps its id from being reused.
_last: tuple[object, bytes] = (None, b"null")

_EVENT_FRAMING = len(b'{"type":"","object":}\n')  # an event line's bytes besides its type and object


def dumps(obj) -> bytes:
    global _last
    if obj is _last[0]:
        return _last[1]
    encoded = orjson.dumps(obj)
    _last = (obj, encoded)
    return encoded


def chunk(payload: bytes) -> bytes:
    """``payload`` framed as one HTTP/1.1 chunk (size line, data, CRLF)."""
    return b"%x\r\n%s\r\n" % (len(payload), payload)


def event_chunk(event_type: str, obj: dict) -> bytes:
    """One watch event, newline-terminated as the client's line splitter expects, framed as the
    HTTP chunk that carries it: built in one go, so the object's bytes are copied once."""
    return event_chunk_from_json(event_type, dumps(obj))


def event_chunk_from_json(event_type: str, body: bytes) -> bytes:
    """``event_chunk`` for an object already encoded as ``body``."""
    kind = event_type.encode()
    size = _EVENT_FRAMING + len(kind) + len(body)
    return b'%x\r\n{"type":"%s","object":%s}\n\r\n' % (size, kind, body)

