"""The API as the HTTP front door serves it: the same ApiServer, plus what HTTP clients such as
kubectl need around it (discovery, health checks, Table output).

It stands where the ApiServer stands behind a Gateway, so faults (latency, errors, outages)
apply to discovery as to everything else, as they would on a sick real cluster.
"""

from __future__ import annotations

from datetime import datetime
from typing import Callable

import orjson

from ..api.openapi import v2_document, v3_core, v3_index
from ..api.server import ApiServer, Reply, Request, WatchReply, json_reply
from ..api.tables import INCLUDE_CHOICES, table, wants_table, watch_line

HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
PLAIN_TEXT = {"Content-Type": "text/plain; charset=utf-8"}

LineFilter = Callable[[bytes], bytes]


class HttpApi:
    def __init__(self, server: ApiServer, utcnow: Callable[[], datetime], address: str):
        self.server, self.utcnow, self.address = server, utcnow, address
        server.address = address   # discovery (/api) names the address clients reached it at

    def handle(self, request: Request) -> Reply | WatchReply:
        if request.method == "GET":
            document = self.document(request.path.rstrip("/") or "/", request.headers.get("accept", ""))
            if document is not None:
                return document
        answer = self.server.handle(request)
        mode = self.table_mode(request)
        if mode and isinstance(answer, Reply) and answer.status == 200:
            api_version, include = mode
            return json_reply(200, table(orjson.loads(answer.body), self.utcnow(), include, api_version))
        return answer

    def document(self, path: str, accept: str = "") -> Reply | None:
        """OpenAPI and health answers (None: not one of those paths; the API server itself serves
        discovery, in-process too)."""
        if path == "/openapi/v3":
            return json_reply(200, v3_index(self.server))
        if path == "/openapi/v3/api/v1":
            return json_reply(200, v3_core(self.server))
        if path == "/openapi/v2":
            body, content_type = v2_document(accept)
            return Reply(200, body, {"Content-Type": content_type})
        if path in HEALTH_PATHS:
            return Reply(200, b"ok", dict(PLAIN_TEXT))
        return None

    @staticmethod
    def table_mode(request: Request) -> tuple[str, str] | None:
        """(Table apiVersion, includeObject) when a GET asks for Table output."""
        if request.method != "GET":
            return None
        api_version = wants_table(request.headers.get("accept", ""))
        if api_version is None:
            return None
        include = request.query.get("includeObject") or "Metadata"
        return api_version, include if include in INCLUDE_CHOICES else "Metadata"

    def watch_filter(self, request: Request) -> LineFilter | None:
        """How each watch event line is rewritten on its way out (Table rows), if at all."""
        mode = self.table_mode(request)
        if mode is None:
            return None
        api_version, include = mode
        return lambda line: watch_line(line, self.utcnow(), include, api_version)
