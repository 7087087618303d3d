"""The API server: what a Kubernetes API server answers, to the byte where it matters.

- ``server``: routing and the verbs (get, list, watch, create, update, patch, delete);
- ``store`` and ``watch``: objects, the global resourceVersion, the watch cache, watchers;
- ``stream``: a watch's chunked response, read in virtual time;
- ``selectors``, ``query``: label and field selectors, list and watch options;
- ``strategies``, ``validation``, ``decoding``, ``patch``: per-kind defaults and checks, typed
  decoding of request bodies, JSON / merge / strategic-merge patches;
- ``status``: Status error bodies as Kubernetes writes them;
- ``tables``, ``discovery``, ``openapi``: Table output, discovery documents, OpenAPI;
- ``wire``: JSON encoding and watch-event framing.

It stands on the kernel alone; the cluster model writes through its store, the front doors
call its server.
"""
