"""Query parameters of list and watch requests, read and checked as kube-apiserver does."""

from __future__ import annotations

from . import status as errors

EXACT, NOT_OLDER_THAN = "Exact", "NotOlderThan"
META_GROUP = "meta.k8s.io"


def validate_list_options(rv: str, match: str, token: str, initial: bool | None, watch: bool) -> None:
    """ValidateListOptions (k8s.io/apimachinery): a 422 on ListOptions.meta.k8s.io, as get.go answers."""
    causes = []

    def forbid(detail: str, field_name: str = "resourceVersionMatch") -> None:
        causes.append(errors.forbidden_cause(field_name, detail))

    if watch:
        if initial is not None and match != NOT_OLDER_THAN:
            forbid(f"sendInitialEvents requires setting resourceVersionMatch to {NOT_OLDER_THAN}")
        if match:
            if initial is None:
                forbid("resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided")
            if match != NOT_OLDER_THAN:
                causes.append(errors.not_supported_cause("resourceVersionMatch", match, [NOT_OLDER_THAN]))
            if token:
                forbid("resourceVersionMatch is forbidden when continue is provided")
    else:
        if match:
            if not rv:
                forbid("resourceVersionMatch is forbidden unless resourceVersion is provided")
            if token:
                forbid("resourceVersionMatch is forbidden when continue is provided")
            if match not in (EXACT, NOT_OLDER_THAN):
                causes.append(errors.not_supported_cause("resourceVersionMatch", match,
                                                         [EXACT, NOT_OLDER_THAN, ""]))
            if match == EXACT and rv == "0":
                forbid('resourceVersionMatch "exact" is forbidden for resourceVersion "0"')
        if initial is not None:
            forbid("sendInitialEvents is forbidden for list", "sendInitialEvents")
    if causes:
        raise errors.invalid("ListOptions", "", causes, META_GROUP)


def parse_rv(value: str) -> int:
    try:
        rv = int(value)
        if rv < 0:
            raise ValueError
        return rv
    except ValueError:
        raise errors.bad_request(f'resourceVersion: Invalid value: "{value}": strconv.ParseUint: '
                                 f'parsing "{value}": invalid syntax') from None


def parse_stored_rv(value) -> int:
    """An object's metadata.resourceVersion as the storage versioner reads it (0: none)."""
    if not isinstance(value, str) or not value.isdigit():
        return 0
    return int(value)


def parse_int(value: str | None, name: str) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        raise errors.bad_request(f'{name}: Invalid value: "{value}": must be an integer') from None


def parse_bool(query: dict, name: str) -> bool | None:
    """A boolean query parameter as Kubernetes' parameter codec reads it: only "0"/"false" are false."""
    if name not in query:
        return None
    return query[name] != "0" and query[name].lower() != "false"
