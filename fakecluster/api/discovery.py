"""Discovery documents: what kubectl reads before anything else (/api, /apis, /api/v1).

The legacy core group holds the resources; /apis lists authorization.k8s.io alone, whose access
reviews (``api.access``) always allow. The plain APIVersions and
APIResourceList forms are served; kubectl asks for aggregated discovery first and falls back
to these when the answer is plain JSON.
"""

from __future__ import annotations

from . import access
from .server import ApiServer

SHORT_NAMES = {"pods": ["po"], "namespaces": ["ns"], "nodes": ["no"], "events": ["ev"], "services": ["svc"]}
ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


def api_versions(server_address: str) -> dict:
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}]}


def api_group_list() -> dict:
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [access.group()]}


def api_group(name: str) -> dict | None:
    """/apis/GROUP: the APIGroup, for the one group served."""
    found = access.group()
    return {"kind": "APIGroup", "apiVersion": "v1", **found} if name == found["name"] else None


def core_resources(server: ApiServer) -> dict:
    """The APIResourceList of /api/v1, from the resources the server really serves."""
    resources = []
    for name, strategy in sorted(server.strategies.items()):
        # deletecollection is served within a namespace only (see ApiServer._dispatch)
        verbs = [v for v in ALL_VERBS if v != "deletecollection" or strategy.namespaced]
        resource = {"name": name, "singularName": strategy.kind.lower(), "namespaced": strategy.namespaced,
                    "kind": strategy.kind, "verbs": verbs, "shortNames": SHORT_NAMES.get(name, [])}
        if name == "pods":
            resource["categories"] = ["all"]
        resources.append(resource)
        if name == "pods":
            resources += [{"name": "pods/status", "singularName": "", "namespaced": True,
                           "kind": "Pod", "verbs": ["get", "patch", "update"]},
                          {"name": "pods/log", "singularName": "", "namespaced": True, "kind": "Pod", "verbs": ["get"]}]
            # listed as kube-apiserver lists them; kubesim answers them with a Status saying it does not serve them
            resources += [{"name": f"pods/{sub}", "singularName": "", "namespaced": True, "kind": kind,
                           "verbs": ["create", "get"]}
                          for sub, kind in (("attach", "PodAttachOptions"), ("exec", "PodExecOptions"),
                                            ("portforward", "PodPortForwardOptions"))]
    return {"kind": "APIResourceList", "groupVersion": "v1", "resources": resources}
