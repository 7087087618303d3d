"""Where a pod may run: kube-scheduler's NodeUnschedulable, TaintToleration and NodeAffinity
filters, and the taint manager's toleration time for NoExecute taints.

A ``Placement`` is what a pod asks of a node beyond room: its node selector, required node
affinity and tolerations. Pods of one placement (and the same requests) fit the same nodes,
so the scheduler queues them together; placements are interned, so comparing two is cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

import orjson

UNSCHEDULABLE_TAINT = "node.kubernetes.io/unschedulable"
NOT_SCHEDULABLE = "node(s) were unschedulable"
SELECTOR_MISMATCH = "node(s) didn't match Pod's node affinity/selector"
SCHEDULING_EFFECTS = ("NoSchedule", "NoExecute")


def tolerates(toleration: dict, taint: dict) -> bool:
    """core/v1 Toleration.ToleratesTaint."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def untolerated(taints, tolerations, effects=SCHEDULING_EFFECTS) -> dict | None:
    """The first taint with one of ``effects`` that no toleration tolerates."""
    for taint in taints:
        if taint.get("effect") in effects and not any(tolerates(t, taint) for t in tolerations):
            return taint
    return None


def taint_message(taint: dict) -> str:
    return f"node(s) had untolerated taint {{{taint.get('key', '')}: {taint.get('value', '')}}}"


def toleration_time(tolerations, taints) -> float | None:
    """How long a pod may stay on a node with these taints (the taint manager's
    getMinTolerationTime): 0 when a NoExecute taint is not tolerated, None for ever (also when
    there is no NoExecute taint), else the least tolerationSeconds among the tolerations used."""
    used = []
    for taint in taints:
        if taint.get("effect") != "NoExecute":
            continue
        matching = [t for t in tolerations if tolerates(t, taint)]
        if not matching:
            return 0.0
        used += matching
    bounded = [max(0.0, float(t["tolerationSeconds"])) for t in used if t.get("tolerationSeconds") is not None]
    return min(bounded) if bounded else None


# -- node affinity ---------------------------------------------------------------------------------

def _requirement_matches(requirement: dict, values: dict) -> bool:
    key, operator = requirement.get("key", ""), requirement.get("operator", "")
    wanted = requirement.get("values") or []
    present = key in values
    if operator == "In":
        return present and values[key] in wanted
    if operator == "NotIn":
        return not present or values[key] not in wanted
    if operator == "Exists":
        return present
    if operator == "DoesNotExist":
        return not present
    if operator in ("Gt", "Lt") and present and len(wanted) == 1:
        try:
            have, bound = int(values[key]), int(wanted[0])
        except ValueError:
            return False
        return have > bound if operator == "Gt" else have < bound
    return False


def _term_matches(term: dict, labels: dict, name: str) -> bool:
    expressions, fields = term.get("matchExpressions") or [], term.get("matchFields") or []
    if not expressions and not fields:
        return False  # an empty term matches no node
    return all(_requirement_matches(r, labels) for r in expressions) and \
        all(_requirement_matches(r, {"metadata.name": name}) for r in fields)


@dataclass(frozen=True, eq=False)  # interned: one object per placement, compared by identity
class Placement:
    selector: tuple = ()        # sorted (key, value) pairs of spec.nodeSelector
    terms: tuple = ()           # required node affinity's nodeSelectorTerms (dicts)
    has_terms: bool = False     # required node affinity given (an empty list of terms matches nothing)
    tolerations: tuple = ()     # the pod's tolerations (dicts)

    def refusal(self, node) -> str | None:
        """Why ``node`` refuses such a pod before resources are counted (None: it does not)."""
        if node.unschedulable and not any(tolerates(t, {"key": UNSCHEDULABLE_TAINT, "effect": "NoSchedule"})
                                          for t in self.tolerations):
            return NOT_SCHEDULABLE
        if node.taints:
            taint = untolerated(node.taints, self.tolerations)
            if taint is not None:
                return taint_message(taint)
        if self.selector or self.has_terms:
            labels = node.labels
            if any(labels.get(k) != v for k, v in self.selector):
                return SELECTOR_MISMATCH
            if self.has_terms and not any(_term_matches(t, labels, node.name) for t in self.terms):
                return SELECTOR_MISMATCH
        return None


EVERYWHERE = Placement()
_interned: dict[bytes, Placement] = {}


def placement_of(spec: dict) -> Placement:
    """The pod spec's placement, one shared object per distinct placement."""
    selector = spec.get("nodeSelector")
    tolerations = spec.get("tolerations")
    required = ((spec.get("affinity") or {}).get("nodeAffinity") or {}).get(
        "requiredDuringSchedulingIgnoredDuringExecution")
    if not selector and not tolerations and required is None:
        return EVERYWHERE
    # one C-speed serialisation as the key: most pods share their placement (defaulted tolerations)
    key = orjson.dumps((selector, required, tolerations), option=orjson.OPT_SORT_KEYS)
    found = _interned.get(key)
    if found is None:
        if len(_interned) > 4096:  # placements are few in practice; never let them grow unbounded
            _interned.clear()
        terms = tuple((required or {}).get("nodeSelectorTerms") or ())
        found = _interned[key] = Placement(tuple(sorted((selector or {}).items())), terms, required is not None,
                                           tuple(tolerations or ()))
    return found
