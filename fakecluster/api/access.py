"""authorization.k8s.io/v1: kubesim has no authorization, so every access review says yes.

``kubectl auth can-i`` creates a SelfSubjectAccessReview and prints ``yes`` when its status says
allowed; ``kubectl auth can-i --list`` creates a SelfSubjectRulesReview and prints its rules.
The reviews are answered, not stored (as kube-apiserver does: they are virtual resources).
"""

from __future__ import annotations

from . import status as errors
from .decoding import decode_json, find_kind_error

GROUP_VERSION = "authorization.k8s.io/v1"
REASON = "kubesim has no authorization: every request is allowed"
REVIEWS = {"selfsubjectaccessreviews": "SelfSubjectAccessReview", "subjectaccessreviews": "SubjectAccessReview",
           "localsubjectaccessreviews": "LocalSubjectAccessReview",
           "selfsubjectrulesreviews": "SelfSubjectRulesReview"}
NAMESPACED = ("localsubjectaccessreviews",)
EVERYTHING = {"resourceRules": [{"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"]}],
              "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}], "incomplete": False}


def review(method: str, parts: list[str], body: bytes | None) -> dict:
    """The answered review of POST /apis/authorization.k8s.io/v1/[namespaces/NS/]RESOURCE."""
    match parts[3:]:
        case [resource] if resource in REVIEWS and resource not in NAMESPACED:
            pass
        case ["namespaces", _, resource] if resource in NAMESPACED:
            pass
        case _:
            raise errors.unknown_resource()
    if method != "POST":
        raise errors.method_not_allowed(method)
    obj = decode_json(body or b"{}")
    if not isinstance(obj, dict):
        raise errors.bad_request(f"couldn't get version/kind; json parse error: {find_kind_error(obj)}")
    kind = REVIEWS[resource]
    status = dict(EVERYTHING) if kind == "SelfSubjectRulesReview" else {"allowed": True, "reason": REASON}
    metadata = obj.get("metadata") if isinstance(obj.get("metadata"), dict) else {}
    return {**obj, "kind": kind, "apiVersion": GROUP_VERSION, "metadata": {**metadata, "creationTimestamp": None},
            "status": status}


def group() -> dict:
    """The APIGroup of authorization.k8s.io, as /apis lists it."""
    version = {"groupVersion": GROUP_VERSION, "version": "v1"}
    return {"name": "authorization.k8s.io", "versions": [version], "preferredVersion": version}


def resources() -> dict:
    """The APIResourceList of /apis/authorization.k8s.io/v1."""
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": GROUP_VERSION,
            "resources": [{"name": name, "singularName": kind.lower(), "namespaced": name in NAMESPACED,
                           "kind": kind, "verbs": ["create"]} for name, kind in REVIEWS.items()]}
