"""The cluster model: what happens to a pod once the API server has it.

- ``nodes``: node capacity, quantities, a node's API object;
- ``scheduler``: binds Pending pods to nodes, or leaves them Pending with kube-scheduler's reasons;
- ``kubelet``: a pod's life on its node (image pull, start, run, exit, eviction) and the statuses
  it writes;
- ``behaviour``: the workload model (run times, failures, image errors) and per-pod steering.

It stands on the API server's store and the kernel, and on nothing else.
"""
