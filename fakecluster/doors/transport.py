"""The in-process front door: a urllib3 PoolManager whose network is the simulated API server.

``kubernetes.client.ApiClient`` keeps a urllib3 pool in ``rest_client.pool_manager``; both client
generations call ``pool_manager.request(...)``, which encodes the request and calls ``urlopen``.
We take over ``urlopen`` only, so URL and body encoding stay urllib3's, and the answer is a real
``urllib3.HTTPResponse``: plain bodies from memory, watch bodies read through ``http.client``
from a simulated socket, so chunked decoding and read timeouts are the real code paths.
urllib3's own ``Retry`` decides retries (Retry-After on 429/503 for idempotent verbs, read
errors), exactly as it would over a socket; only its sleep happens in virtual time.
"""

from __future__ import annotations

import http.client
import io

import urllib3
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError, ReadTimeoutError
from urllib3.util.retry import Retry
from urllib3.util.timeout import Timeout

from ..api.server import Reply, Request, WatchReply
from ..api.stream import StreamSocket
from ..faults import ConnectionFault
from .gateway import Gateway

_REASONS = http.client.responses


class FakePoolManager(urllib3.PoolManager):
    def __init__(self, gateway: Gateway, **connection_pool_kw):
        super().__init__(**connection_pool_kw)
        self.gateway = gateway

    def _pool_named_in_errors(self, url: str):
        """urllib3 names the connection pool in its errors; this one never connects."""
        parsed = urllib3.util.parse_url(url)
        pool_class = urllib3.HTTPSConnectionPool if parsed.scheme == "https" else urllib3.HTTPConnectionPool
        return pool_class(parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80))

    def urlopen(self, method, url, redirect=True, **kw):  # noqa: D401 - urllib3's signature
        retries = kw.get("retries", self.connection_pool_kw.get("retries"))
        if not isinstance(retries, Retry):
            retries = Retry.from_int(retries, redirect=redirect, default=Retry.DEFAULT)
        body = kw.get("body")
        if isinstance(body, str):
            body = body.encode("utf-8")
        request = Request.from_url(method, url, kw.get("headers") or {}, body)
        read_timeout = _read_timeout(kw.get("timeout"))
        preload = kw.get("preload_content", True)
        while True:
            try:
                answer = self.gateway.exchange(request, read_timeout)
            except (ConnectionFault, TimeoutError) as fault:
                pool, path = self._pool_named_in_errors(url), urllib3.util.parse_url(url).request_uri
                error = _as_urllib3_error(fault, path, pool, read_timeout)
                retries = retries.increment(method, path, error=error, _pool=pool)
                self.gateway.kernel.sleep(retries.get_backoff_time())
                continue
            response = _response(answer, method, url, preload, read_timeout)
            if not retries.is_retry(method, response.status, _has_retry_after(response.headers)):
                return response
            try:
                retries = retries.increment(method, url, response=response,
                                            _pool=self._pool_named_in_errors(url))
            except MaxRetryError:
                if retries.raise_on_status:
                    raise
                return response
            response.drain_conn()
            delay = retries.get_retry_after(response) if retries.respect_retry_after_header else None
            self.gateway.kernel.sleep(delay if delay is not None else retries.get_backoff_time())


def _has_retry_after(headers: urllib3.HTTPHeaderDict) -> bool:
    """urllib3's ``bool(headers.get("Retry-After"))``, without a KeyError raised and caught
    inside ``get`` for the usual answer that has none."""
    return "Retry-After" in headers and bool(headers["Retry-After"])


def _read_timeout(timeout) -> float | None:
    """The client's read timeout in (virtual) seconds, or None for none.

    ``Timeout.read_timeout`` cannot be used: with ``total`` set (the client's scalar
    ``_request_timeout=5`` becomes ``Timeout(total=5)``) it needs a started connect timer and
    would subtract wall-clock time. A connection here takes no time, so the read timeout is
    the smaller of ``read`` and ``total``.
    """
    if isinstance(timeout, Timeout):
        parts = (getattr(timeout, "_read", None), timeout.total)
        values = [float(v) for v in parts if v is not None and v is not Timeout.DEFAULT_TIMEOUT]
        return min(values) if values else None
    if isinstance(timeout, (int, float)):
        return float(timeout)
    return None


def _as_urllib3_error(fault: Exception, url: str, pool, read_timeout: float | None) -> Exception:
    if isinstance(fault, TimeoutError):
        return ReadTimeoutError(pool, url, f"Read timed out. (read timeout={read_timeout:g})")
    if fault.kind == "refused":
        connection = pool.ConnectionCls(pool.host, pool.port)
        return NewConnectionError(connection, "Failed to establish a new connection: [Errno 111] Connection refused")
    return ProtocolError("Connection aborted.", ConnectionResetError(104, "Connection reset by peer"))


def _response(answer, method: str, url: str, preload: bool, read_timeout: float | None):
    if isinstance(answer, WatchReply):
        return _streaming_response(answer, method, url, preload, read_timeout)
    assert isinstance(answer, Reply)
    return urllib3.HTTPResponse(
        body=io.BytesIO(answer.body), headers=answer.headers, status=answer.status,
        reason=_REASONS.get(answer.status, ""), preload_content=preload, decode_content=True,
        request_method=method, request_url=url, version=11, version_string="HTTP/1.1")


def _streaming_response(answer: WatchReply, method: str, url: str, preload: bool, read_timeout):
    raw = http.client.HTTPResponse(StreamSocket(answer.stream, read_timeout), method=method)
    raw.begin()
    headers = urllib3.HTTPHeaderDict()
    for name, value in raw.getheaders():
        headers.add(name, value)
    return urllib3.HTTPResponse(
        body=raw, headers=headers, status=raw.status, reason=raw.reason, preload_content=preload,
        decode_content=True, original_response=raw, request_method=method, request_url=url,
        version=raw.version, version_string="HTTP/1.1")
