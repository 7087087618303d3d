"""Kubernetes ``Status`` error bodies, as k8s.io/apimachinery's errors package writes them.

Handlers raise ``ApiError``; the transport turns it into an HTTP answer. ``kind`` in details is
the resource (plural, "pods") except for 422 Invalid, where it is the Kind ("Pod").
"""

from __future__ import annotations

import json
from typing import Any

from .validation import go_quote


class ApiError(Exception):
    """An HTTP error answer: a status code, a Status body (or plain text) and headers."""

    def __init__(self, code: int, reason: str, message: str, details: dict | None = None,
                 headers: dict | None = None, plain_text: bool = False, metadata: dict | None = None):
        super().__init__(message)
        self.code, self.reason, self.message = code, reason, message
        self.details = details
        self.headers = dict(headers or {})
        self.plain_text = plain_text
        self.metadata = metadata or {}

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": self.metadata,
                                "status": "Failure", "message": self.message}
        if self.reason:
            body["reason"] = self.reason
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body

    def body(self) -> bytes:
        if self.plain_text:
            return (self.message + "\n").encode()
        return json.dumps(self.status(), separators=(",", ":")).encode()

    def content_type(self) -> str:
        return "text/plain; charset=utf-8" if self.plain_text else "application/json"


def _details(name: str | None, kind: str, group: str = "", **extra) -> dict:
    """metav1.StatusDetails in its JSON field order: name, group, kind, then causes and the rest."""
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    if kind:
        details["kind"] = kind
    details.update(extra)
    return details


def unknown(code: int, message: str) -> ApiError:
    """An error that is no Status of its own (a plain Go error): reason is empty and left out."""
    return ApiError(code, "", message)


def not_found(resource: str, name: str) -> ApiError:
    return ApiError(404, "NotFound", f"{resource} {go_quote(name)} not found", _details(name, resource))


def unknown_resource() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def method_not_allowed(method: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


def already_exists(resource: str, name: str) -> ApiError:
    return ApiError(409, "AlreadyExists", f"{resource} {go_quote(name)} already exists",
                    _details(name, resource))


def conflict(resource: str, name: str, why: str) -> ApiError:
    return ApiError(409, "Conflict", f"Operation cannot be fulfilled on {resource} {go_quote(name)}: {why}",
                    _details(name, resource))


STALE_OBJECT = ("the object has been modified; please apply your changes to the latest version "
                "and try again")


def invalid(kind: str, name: str, causes: list[dict], group: str = "") -> ApiError:
    """422 as errors.NewInvalid writes it: ``<Kind>[.<group>] "<name>" is invalid: <errors>``.

    The summary is Go's aggregate (distinct ``field: message`` texts, bracketed when several);
    the causes keep every entry, each in StatusCause's field order (reason, message, field).
    """
    causes = [{"reason": c["reason"], "message": c["message"], "field": c["field"]} for c in causes]
    reasons = list(dict.fromkeys(f'{c["field"]}: {c["message"]}' for c in causes))
    summary = reasons[0] if len(reasons) == 1 else "[" + ", ".join(reasons) + "]"
    qualified = f"{kind}.{group}" if group else kind
    return ApiError(422, "Invalid", f"{qualified} {go_quote(name)} is invalid: {summary}",
                    _details(name, kind, group, causes=causes))


def forbidden_cause(field: str, detail: str) -> dict:
    """A field.Forbidden error as a Status cause."""
    return {"reason": "FieldValueForbidden", "message": f"Forbidden: {detail}", "field": field}


def not_supported_cause(field: str, value: str, supported: list[str]) -> dict:
    """A field.NotSupported error as a Status cause."""
    choices = ", ".join(json.dumps(choice) for choice in supported)
    return {"reason": "FieldValueNotSupported",
            "message": f"Unsupported value: {go_quote(value)}: supported values: {choices}",
            "field": field}


def invalid_cause(field: str, value: str, detail: str) -> dict:
    """A field.Invalid error (with a string value) as a Status cause."""
    return {"reason": "FieldValueInvalid", "message": f"Invalid value: {go_quote(value)}: {detail}",
            "field": field}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def expired(message: str, metadata: dict | None = None) -> ApiError:
    return ApiError(410, "Expired", message, metadata=metadata)


def too_old_resource_version(requested: int, floor: int) -> ApiError:
    """The watch cache's 410 (the ERROR event of a watch started before its window)."""
    return expired(f"too old resource version: {requested} ({floor})")


def forbidden(resource: str, name: str | None, why: str) -> ApiError:
    subject = f'{resource} "{name}"' if name else resource
    return ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", _details(name, resource))


def quota_exceeded(resource: str, name: str | None, quota: str, used: int, limit: int) -> ApiError:
    why = (f"exceeded quota: {quota}, requested: {resource}=1, used: {resource}={used}, "
           f"limited: {resource}={limit}")
    return forbidden(resource, name, why)


def too_many_requests(retry_after: int, as_status: bool = False) -> ApiError:
    """429 as the max-in-flight filter writes it (plain text), or as a Status when asked."""
    headers = {"Retry-After": str(retry_after)}
    if not as_status:
        return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                        headers=headers, plain_text=True)
    return ApiError(429, "TooManyRequests", "Too many requests, please try again later.",
                    {"retryAfterSeconds": retry_after}, headers=headers)


def internal_error(cause: str) -> ApiError:
    return ApiError(500, "InternalError", f"Internal error occurred: {cause}",
                    {"causes": [{"message": cause}]})


def service_unavailable(message: str = "the server is currently unable to handle the request",
                        retry_after: int | None = None) -> ApiError:
    if not retry_after:  # the server sends the header exactly when retryAfterSeconds > 0
        return ApiError(503, "ServiceUnavailable", message)
    return ApiError(503, "ServiceUnavailable", message, {"retryAfterSeconds": retry_after},
                    headers={"Retry-After": str(retry_after)})


def timeout(message: str, retry_after: int, causes: list[dict] | None = None) -> ApiError:
    details: dict[str, Any] = {}
    if causes:
        details["causes"] = causes
    details["retryAfterSeconds"] = retry_after
    return ApiError(504, "Timeout", f"Timeout: {message}", details,
                    headers={"Retry-After": str(retry_after)})


def too_large_resource_version(requested: int, current: int) -> ApiError:
    return timeout(f"Too large resource version: {requested}, current: {current}", 1,
                   [{"reason": "ResourceVersionTooLarge", "message": "Too large resource version"}])


def entity_too_large(limit: int) -> ApiError:
    return ApiError(413, "RequestEntityTooLarge", f"Request entity too large: limit is {limit}")


def not_acceptable(accepted: tuple[str, ...]) -> ApiError:
    return ApiError(406, "NotAcceptable",
                    f"only the following media types are accepted: {', '.join(accepted)}")


def unsupported_media_type(content_type: str, accepted: tuple[str, ...]) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f'the body of the request was in an unknown format - accepted media types '
                    f'include: {", ".join(accepted)}')


def by_code(code: int, resource: str = "pods", name: str | None = None,
            retry_after: int = 1) -> ApiError:
    """The canonical error for an injected fault with this HTTP code."""
    makers = {
        400: lambda: bad_request("injected bad request"),
        403: lambda: quota_exceeded(resource, name, "compute-quota", 10, 10),
        404: lambda: not_found(resource, name or "unknown"),
        409: lambda: already_exists(resource, name or "unknown"),
        410: lambda: expired("The resourceVersion for the provided list is too old."),
        422: lambda: invalid("Pod", name or "unknown", [{"reason": "FieldValueInvalid",
                                                          "message": "Invalid value: injected",
                                                          "field": "metadata.name"}]),
        429: lambda: too_many_requests(retry_after),
        500: lambda: internal_error("injected fault"),
        503: lambda: service_unavailable(retry_after=retry_after),
        504: lambda: timeout("request did not complete within the allotted timeout", retry_after),
    }
    if code not in makers:
        raise ValueError(f"no canonical Kubernetes error for HTTP {code}; "
                         f"choose one of {sorted(makers)}")
    return makers[code]()
