"""API-level faults through the real client: latency, injected errors, outages, resets, timeouts.

What the client does with each fault is the client's own code (urllib3's Retry, the generated
``ApiException`` mapping); only urllib3's sleeps happen in virtual time.
"""

from __future__ import annotations

import json
import math
import random

import kubernetes
import pytest
from kubernetes.client.rest import ApiException
from urllib3.exceptions import MaxRetryError, NewConnectionError, ProtocolError, ReadTimeoutError

from fakecluster import ErrorRule, FakeCluster, Faults, Outage, constant, exponential, lognormal, uniform

NS = "default"


def world(faults: Faults, seed: int = 5, **kw):
    cluster = FakeCluster(seed=seed, faults=faults, **kw)
    return cluster, kubernetes.client.CoreV1Api(cluster.api_client())


def manifest(name: str) -> dict:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name},
            "spec": {"restartPolicy": "Never", "containers": [{"name": "base", "image": "busybox:1.36"}]}}


def statuses(cluster, verb: str) -> list:
    return [call.status for call in cluster.gateway.log if call.verb == verb]


def attempt(fn, *args, **kw):
    """Call through the client; return the exception instead of raising it."""
    try:
        fn(*args, **kw)
    except Exception as exc:  # noqa: BLE001 - the test looks at exactly what came out
        return exc
    return None


# -- latency -------------------------------------------------------------------------------------

def test_create_with_constant_latency_completes_after_it():
    cluster, api = world(Faults(latency={"create": constant(0.5)}))

    def main():
        cluster.sleep(3)
        api.create_namespaced_pod(NS, manifest("slow"))
        after_create = cluster.now
        api.read_namespaced_pod("slow", NS)  # no latency configured for get
        return after_create, cluster.now

    assert cluster.run(main) == (3.5, 3.5)
    assert [(c.time, c.verb, c.status) for c in cluster.gateway.log] == [(3.5, "create", 201), (3.5, "get", 200)]


def test_a_verb_latency_overrides_the_default_for_every_verb():
    cluster, api = world(Faults(latency={"*": constant(0.25), "list": constant(2.0)}))

    def main():
        api.create_namespaced_pod(NS, manifest("p"))
        created = cluster.now
        api.list_namespaced_pod(NS)
        return created, cluster.now

    assert cluster.run(main) == (0.25, 2.25)


@pytest.mark.parametrize("latency, low, high, mean", [
    (uniform(0.1, 0.3), 0.1, 0.3, 0.2),
    (exponential(0.05), 0.0, math.inf, 0.05),
    (lognormal(0.02, 0.2), 0.0, math.inf, None),
])
def test_latency_distributions_are_seeded_and_in_range(latency, low, high, mean):
    faults = Faults(latency={"get": latency})
    draws = [faults.delay("get", random.Random(9)) for _ in range(3)]
    assert draws[0] == draws[1] == draws[2]
    rng = random.Random(1)
    sample = [faults.delay("get", rng) for _ in range(4000)]
    assert all(low <= d <= high for d in sample)
    if mean is not None:
        assert sum(sample) / len(sample) == pytest.approx(mean, rel=0.1)
    else:  # median and p99 as asked
        ordered = sorted(sample)
        assert ordered[2000] == pytest.approx(0.02, rel=0.1)
        assert ordered[3960] == pytest.approx(0.2, rel=0.25)


def test_latency_for_an_unknown_verb_is_refused():
    with pytest.raises(ValueError, match="not API verbs"):
        Faults(latency={"lists": constant(1)})


# -- injected errors: by probability, count and time window ------------------------------------

def test_error_rule_by_probability_hits_about_that_share_and_is_seeded():
    def run(seed):
        cluster, api = world(Faults(errors=[ErrorRule(500, verbs=("get",), probability=0.3)]), seed=seed)

        def main():
            api.create_namespaced_pod(NS, manifest("p"))
            return [attempt(api.read_namespaced_pod, "p", NS) is None for _ in range(400)]

        return cluster.run(main)

    outcomes = run(1)
    assert outcomes == run(1) and outcomes != run(2)
    assert outcomes.count(False) / len(outcomes) == pytest.approx(0.3, abs=0.06)


def test_error_rule_by_count_stops_after_that_many():
    rule = ErrorRule(500, verbs=("create",), count=2)
    cluster, api = world(Faults(errors=[rule]))

    def main():
        return [attempt(api.create_namespaced_pod, NS, manifest(f"p{i}")) for i in range(4)]

    results = cluster.run(main)
    assert [getattr(r, "status", None) for r in results] == [500, 500, None, None]
    body = json.loads(results[0].body)
    assert (body["reason"], body["message"]) == ("InternalError", "Internal error occurred: injected fault")
    assert rule.injected == 2
    assert sorted(p["metadata"]["name"] for p in cluster.pods()) == ["p2", "p3"]


def test_error_rule_only_in_its_time_window():
    cluster, api = world(Faults(errors=[ErrorRule(500, verbs=("list",), start=10, end=20)]))

    def main():
        seen = []
        for _ in range(6):
            seen.append((cluster.now, getattr(attempt(api.list_namespaced_pod, NS), "status", 200)))
            cluster.sleep(5)
        return seen

    assert cluster.run(main) == [(0, 200), (5, 200), (10, 500), (15, 500), (20, 200), (25, 200)]


def test_error_rule_applies_only_to_its_verbs_and_resource():
    cluster, api = world(Faults(errors=[ErrorRule(500, verbs="create")]))

    def main():
        listed = attempt(api.list_namespaced_pod, NS)
        namespace = attempt(api.create_namespace, {"metadata": {"name": "extra"}})
        pod = attempt(api.create_namespaced_pod, NS, manifest("p"))
        return listed, namespace, pod

    listed, namespace, pod = cluster.run(main)
    assert listed is None and namespace is None  # other verbs, other resources
    assert pod.status == 500


def test_error_rule_without_a_kubernetes_error_for_its_code_fails_at_once():
    with pytest.raises(ValueError, match="no canonical Kubernetes error for HTTP 418"):
        ErrorRule(418)
    with pytest.raises(ValueError, match="not API verbs"):
        ErrorRule(500, verbs=("fetch",))
    with pytest.raises(ValueError, match="probability"):
        ErrorRule(500, probability=2)


# -- 429 -----------------------------------------------------------------------------------------

def test_429_on_a_list_is_retried_by_urllib3_after_retry_after_in_virtual_time():
    cluster, api = world(Faults(errors=[ErrorRule(429, verbs=("list",), count=2, retry_after=3)]))

    def main():
        cluster.sleep(1)
        listing = api.list_namespaced_pod(NS)
        return listing, cluster.now

    listing, now = cluster.run(main)
    assert listing.items == [] and now == 1 + 3 + 3
    assert [(c.time, c.status) for c in cluster.gateway.log] == [(1, 429), (4, 429), (7, 200)]


def test_429_on_a_create_is_not_retried_and_shows_retry_after():
    cluster, api = world(Faults(errors=[ErrorRule(429, verbs=("create",), count=1, retry_after=7)]))

    def main():
        error = attempt(api.create_namespaced_pod, NS, manifest("p"))
        return error, cluster.now

    error, now = cluster.run(main)
    assert isinstance(error, ApiException) and error.status == 429 and now == 0
    assert error.headers["Retry-After"] == "7"
    assert error.headers["Content-Type"].startswith("text/plain")
    assert error.body in ("Too many requests, please try again later.\n",
                          b"Too many requests, please try again later.\n")  # plain text, not a Status
    assert cluster.pods() == []


def test_429_as_a_status_body():
    cluster, api = world(Faults(errors=[ErrorRule(429, verbs=("create",), retry_after=2, status_body=True)]))

    error = cluster.run(attempt, api.create_namespaced_pod, NS, manifest("p"))
    assert error.status == 429 and error.headers["Retry-After"] == "2"
    body = json.loads(error.body)
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "TooManyRequests", 429)
    assert body["details"]["retryAfterSeconds"] == 2


def test_429_that_never_ends_gives_the_list_back_after_urllib3_runs_out_of_retries():
    cluster, api = world(Faults(errors=[ErrorRule(429, verbs=("list",), retry_after=1)]))

    error, now = cluster.run(lambda: (attempt(api.list_namespaced_pod, NS), cluster.now))
    # Retry(total=3): three retries; with none left is_retry() is False, so urllib3 hands the
    # fourth 429 to the client, which raises it
    assert isinstance(error, ApiException) and error.status == 429
    assert now == 3 and statuses(cluster, "list") == [429] * 4


# -- other codes ---------------------------------------------------------------------------------

def test_403_quota_on_create_names_the_pod_and_the_quota():
    cluster, api = world(Faults(errors=[ErrorRule(403, verbs=("create",))]))

    error = cluster.run(attempt, api.create_namespaced_pod, NS, manifest("x"))
    assert error.status == 403
    body = json.loads(error.body)
    assert body["reason"] == "Forbidden"
    assert body["message"] == ('pods "x" is forbidden: exceeded quota: compute-quota, requested: pods=1, '
                               'used: pods=10, limited: pods=10')
    assert body["details"] == {"name": "x", "kind": "pods"}
    assert cluster.pods() == []


def test_409_injected_on_create():
    cluster, api = world(Faults(errors=[ErrorRule(409, verbs=("create",))]))

    error = cluster.run(attempt, api.create_namespaced_pod, NS, manifest("dup"))
    body = json.loads(error.body)
    assert (error.status, body["reason"], body["message"]) == (409, "AlreadyExists", 'pods "dup" already exists')


def test_503_on_create_is_not_retried_even_with_retry_after():
    cluster, api = world(Faults(errors=[ErrorRule(503, verbs=("create",), count=1, retry_after=2)]))

    error = cluster.run(attempt, api.create_namespaced_pod, NS, manifest("p"))
    assert error.status == 503 and json.loads(error.body)["reason"] == "ServiceUnavailable"
    assert cluster.now == 0


def test_503_with_retry_after_on_a_get_is_retried_transparently():
    cluster, api = world(Faults(errors=[ErrorRule(503, verbs=("list",), count=1, retry_after=2)]))

    assert cluster.run(lambda: (api.list_namespaced_pod(NS).items, cluster.now)) == ([], 2)


def test_503_without_retry_after_reaches_the_caller_of_a_get_at_once():
    cluster, api = world(Faults(errors=[ErrorRule(503, verbs=("list",), count=1, retry_after=None)]))

    error = cluster.run(attempt, api.list_namespaced_pod, NS)
    assert error.status == 503 and "Retry-After" not in error.headers and cluster.now == 0


def test_500_is_not_retried_on_a_get():
    cluster, api = world(Faults(errors=[ErrorRule(500, verbs=("list",), count=1)]))

    error = cluster.run(attempt, api.list_namespaced_pod, NS)
    assert error.status == 500 and statuses(cluster, "list") == [500]


# -- outages -------------------------------------------------------------------------------------

def test_outage_unavailable_answers_503_inside_the_window_only():
    cluster, api = world(Faults(outages=[Outage(10, 30)]))

    def main():
        seen = []
        for when in (0, 10, 29, 30):
            cluster.sleep(when - cluster.now)
            error = attempt(api.list_namespaced_pod, NS)
            seen.append((when, getattr(error, "status", 200)))
        return seen

    assert cluster.run(main) == [(0, 200), (10, 503), (29, 503), (30, 200)]


def test_outage_with_retry_after_is_ridden_out_by_urllib3_for_a_get():
    cluster, api = world(Faults(outages=[Outage(0, 2.5, retry_after=1)]))

    assert cluster.run(lambda: (api.list_namespaced_pod(NS).items, cluster.now)) == ([], 3)
    assert statuses(cluster, "list") == [503, 503, 503, 200]


def test_outage_refused_is_a_connection_error_after_urllib3_retries():
    cluster, api = world(Faults(outages=[Outage(0, 60, mode="refused")]))

    def main():
        return attempt(api.list_namespaced_pod, NS), attempt(api.create_namespaced_pod, NS, manifest("p"))

    listed, created = cluster.run(main)
    for error in (listed, created):  # connection errors are safe to retry, even for POST
        assert isinstance(error, MaxRetryError)
        assert isinstance(error.reason, NewConnectionError) and "Connection refused" in str(error.reason)
    assert statuses(cluster, "list") == ["refused"] * 4 and statuses(cluster, "create") == ["refused"] * 4
    assert cluster.pods() == [] and cluster.now == 0


def test_outage_mode_is_checked():
    with pytest.raises(ValueError, match="outage mode"):
        Outage(0, 1, mode="flaky")


# -- connection resets and read timeouts -----------------------------------------------------------

def test_reset_connection_raises_protocol_error_for_post_and_is_retried_for_get():
    cluster, api = world(Faults(reset_probability=1.0))

    def main():
        return attempt(api.create_namespaced_pod, NS, manifest("p")), attempt(api.list_namespaced_pod, NS)

    created, listed = cluster.run(main)
    assert isinstance(created, ProtocolError) and "Connection aborted" in str(created)
    assert isinstance(listed, MaxRetryError) and isinstance(listed.reason, ProtocolError)
    assert statuses(cluster, "create") == ["reset"] and statuses(cluster, "list") == ["reset"] * 4
    assert cluster.pods() == []


def test_reset_probability_drops_about_that_share_of_requests():
    cluster, api = world(Faults(reset_probability=0.2), seed=3)

    def main():
        return [attempt(api.create_namespaced_pod, NS, manifest(f"p{i}")) for i in range(300)]

    results = cluster.run(main)
    failed = sum(isinstance(r, ProtocolError) for r in results)
    assert failed / len(results) == pytest.approx(0.2, abs=0.06)
    assert len(cluster.pods()) == len(results) - failed


def test_create_slower_than_the_read_timeout_times_out_but_the_pod_is_created():
    cluster, api = world(Faults(latency={"create": constant(5.0)}))

    def main():
        error = attempt(api.create_namespaced_pod, NS, manifest("ghost"), _request_timeout=2)
        gave_up = cluster.now
        cluster.sleep(2.9)
        before = [p["metadata"]["name"] for p in cluster.pods()]
        cluster.sleep(0.1)
        return error, gave_up, before, api.read_namespaced_pod("ghost", NS)

    error, gave_up, before, pod = cluster.run(main)
    assert isinstance(error, ReadTimeoutError) and gave_up == 2  # POST: urllib3 does not retry
    assert before == []  # the request is still on its way
    assert pod.metadata.name == "ghost"  # created after all: the client thinks it failed
    assert statuses(cluster, "create") == ["read-timeout", 201]


def test_get_slower_than_the_read_timeout_is_retried_by_urllib3_then_gives_up():
    cluster, api = world(Faults(latency={"list": constant(5.0)}))

    def main():
        error = attempt(api.list_namespaced_pod, NS, _request_timeout=(1, 2))
        return error, cluster.now

    error, now = cluster.run(main)
    assert isinstance(error, MaxRetryError) and isinstance(error.reason, ReadTimeoutError)
    assert now == 8  # four attempts of 2 s each
