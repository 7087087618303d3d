"""PATCH bodies for the fake API server (reference doc section 5.7).

Three of the four Kubernetes patch types are applied here:

* ``application/json-patch+json``: RFC 6902, done by ``jsonpatch``.
* ``application/merge-patch+json``: RFC 7386.
* ``application/strategic-merge-patch+json``: Kubernetes strategic merge,
  with the list strategies of the Pod type.

Server-side apply (``application/apply-patch+yaml``) is out of scope and is
refused with 415, as is any other content type.

Errors are worded as kube-apiserver's ``handlers/patch.go`` words them (Go's
decoder messages, never Python's):

* 400 BadRequest: the body is not JSON ("error decoding patch: <Go's syntax
  error>"), or not the shape the patch type needs (an object for merge
  patches, a list of operation objects for JSON Patch).
* 422 Invalid, for a JSON Patch that does not apply (a failed ``test``, a
  missing path, an unknown ``op``): kube-apiserver answers all of these with
  the generic "the server rejected our request due to an error in our
  request" and empty details, and so does this module.
* 413 for a JSON Patch of more than 10,000 operations.
* 422 for a strategic merge patch that cannot apply (a bad ``$patch``
  directive, a list element without its merge key), worded as Kubernetes'
  mergepatch errors.
* 415 UnsupportedMediaType: any other content type.
"""

import copy
import json

import jsonpatch
import jsonpointer

from .decoding import go_json_type, go_syntax_error

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"

SUPPORTED_PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)

_REASONS = {400: "BadRequest", 413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 422: "Invalid"}
MAX_JSON_PATCH_OPERATIONS = 10000   # kube-apiserver's maxJSONPatchOperations
# what kube-apiserver says of any JSON Patch that does not apply (NewGenericServerResponse(422, ...))
JSON_PATCH_NOT_APPLIED = "the server rejected our request due to an error in our request"


class PatchError(ValueError):
    """A patch that was refused; ``code`` and ``reason`` feed the Status."""

    def __init__(self, code, message, reason=None, details=None):
        super().__init__(message)
        self.code = code
        self.reason = reason or _REASONS[code]
        self.message = message
        self.details = details  # the Status's details, when it has any


def apply_patch(obj, patch_body, content_type):
    """Return a new object: ``obj`` patched by ``patch_body``.

    ``obj`` is never mutated. Raises PatchError (see the module docstring for
    the codes).
    """
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type not in SUPPORTED_PATCH_TYPES:
        raise PatchError(
            415,
            "the body of the request was in an unknown format - accepted media "
            "types include: " + ", ".join(SUPPORTED_PATCH_TYPES),
        )
    patch = _decode_json(patch_body)
    target = copy.deepcopy(obj)
    if media_type == JSON_PATCH:
        return _apply_json_patch(target, patch)
    if not isinstance(patch, dict):
        raise PatchError(
            400,
            f"error decoding patch: the {media_type} body must be a JSON object, "
            f"got {go_json_type(patch)}",
        )
    if media_type == MERGE_PATCH:
        return json_merge_patch(target, patch)
    return strategic_merge_patch(target, patch)


def _decode_json(patch_body):
    text = patch_body.decode("utf-8", errors="replace") if isinstance(patch_body, bytes) else patch_body
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as error:
        problem = go_syntax_error(text, error)
    except ValueError as error:  # NaN, Infinity
        problem = str(error)
    raise PatchError(400, f"error decoding patch: {problem}")


def _reject_constant(name):
    # Python's json accepts NaN and Infinity; Go's decoder (and JSON) does not.
    raise ValueError(f"invalid character '{name[0]}' looking for beginning of value")


# ---------------------------------------------------------------- JSON Patch

def _apply_json_patch(target, operations):
    """The patched document (any JSON value: the API server judges whether it is an object)."""
    if not isinstance(operations, list):
        raise PatchError(
            400,
            f"error decoding patch: json: cannot unmarshal {go_json_type(operations)} "
            "into Go value of type []handlers.jsonPatchOp",
        )
    for operation in operations:
        _check_operation_shape(operation)
    if len(operations) > MAX_JSON_PATCH_OPERATIONS:
        raise PatchError(413, f"The allowed maximum operations in a JSON patch is "
                              f"{MAX_JSON_PATCH_OPERATIONS}, got {len(operations)}")
    try:
        return jsonpatch.JsonPatch(operations).apply(target, in_place=True)
    except (jsonpatch.JsonPatchException, jsonpointer.JsonPointerException, TypeError, KeyError, IndexError,
            ValueError, AttributeError):
        raise PatchError(422, JSON_PATCH_NOT_APPLIED, details={}) from None


def _check_operation_shape(operation):
    """Refuse with 400 what Go could not decode into its operation struct."""
    if not isinstance(operation, dict):
        raise PatchError(
            400,
            f"error decoding patch: json: cannot unmarshal {go_json_type(operation)} "
            "into Go value of type handlers.jsonPatchOp",
        )
    for field in ("op", "path", "from"):
        value = operation.get(field)
        if value is not None and not isinstance(value, str):
            raise PatchError(
                400,
                f"error decoding patch: json: cannot unmarshal {go_json_type(value)} "
                f"into Go struct field jsonPatchOp.{field} of type string",
            )


# --------------------------------------------------------------- merge patch

def json_merge_patch(target, patch):
    """RFC 7386: null deletes, objects merge, anything else replaces."""
    if not isinstance(patch, dict):
        return patch
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = json_merge_patch(result.get(key), value)
    return result


# ---------------------------------------------------- strategic merge patch

# Lists whose Kubernetes patch strategy is "merge", keyed by the path of map
# keys from the object root (list positions are not part of the path). The
# value is the patchMergeKey; MERGE_AS_SET marks a list of primitives merged
# as a set. Every other list is atomic: the patch replaces it.
MERGE_AS_SET = None

_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_CONTAINER_FIELD_KEYS = {
    "env": "name",
    "ports": "containerPort",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
}

LIST_MERGE_KEYS = {
    ("metadata", "finalizers"): MERGE_AS_SET,
    ("metadata", "ownerReferences"): "uid",
    ("spec", "volumes"): "name",
    ("spec", "imagePullSecrets"): "name",
    ("spec", "hostAliases"): "ip",
    ("spec", "topologySpreadConstraints"): "topologyKey",
    ("spec", "schedulingGates"): "name",
    ("spec", "resourceClaims"): "name",
    ("status", "conditions"): "type",
    ("status", "podIPs"): "ip",
    ("status", "hostIPs"): "ip",
}
for _list in _CONTAINER_LISTS:
    LIST_MERGE_KEYS[("spec", _list)] = "name"
    for _field, _key in _CONTAINER_FIELD_KEYS.items():
        LIST_MERGE_KEYS[("spec", _list, _field)] = _key

PATCH_DIRECTIVE = "$patch"
RETAIN_KEYS_DIRECTIVE = "$retainKeys"
DELETE_FROM_LIST_PREFIX = "$deleteFromPrimitiveList/"


def strategic_merge_patch(target, patch):
    """Kubernetes strategic merge of a Pod-shaped ``target`` and ``patch``."""
    result = _merge_map(target, patch, ())
    return {} if result is None else result


def _merge_map(original, patch, path):
    """Merge a patch map into ``original``; None means "delete this map"."""
    directive = patch.get(PATCH_DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        return strip_directives(patch)
    if directive not in (None, "merge"):  # "merge" is the default, spelled out
        raise PatchError(422, f"unknown patch type: {go_value(directive)} in map: {go_value(patch)}")

    result = dict(original)
    for key, values in patch.items():
        if key.startswith(DELETE_FROM_LIST_PREFIX):
            _delete_from_primitive_list(result, key[len(DELETE_FROM_LIST_PREFIX):], values)
    for key, value in patch.items():
        if key.startswith("$"):
            continue  # directives, including $setElementOrder, are not data
        merged = None if value is None else _merge_value(result.get(key), value, path + (key,))
        if merged is None:
            result.pop(key, None)
        else:
            result[key] = merged
    retained = patch.get(RETAIN_KEYS_DIRECTIVE)
    if isinstance(retained, list):
        result = {key: value for key, value in result.items() if key in retained}
    return result


def _merge_value(original, patch, path):
    """Merge one field; a missing original merges like an empty one."""
    if isinstance(patch, dict):
        return _merge_map(original if isinstance(original, dict) else {}, patch, path)
    if isinstance(patch, list):
        return _merge_list(original if isinstance(original, list) else [], patch, path)
    return patch


def _merge_list(original, patch, path):
    if path not in LIST_MERGE_KEYS:
        return strip_directives(patch)  # atomic list
    if any(_directive_of(item) == "replace" for item in patch):
        return strip_directives([item for item in patch if _directive_of(item) is None])
    merge_key = LIST_MERGE_KEYS[path]
    if merge_key is MERGE_AS_SET:
        return original + [item for item in _unique(patch) if item not in original]
    return _merge_keyed_list(original, patch, merge_key, path)


def _merge_keyed_list(original, patch, merge_key, path):
    result = list(original)
    for item in patch:
        if not isinstance(item, dict) or merge_key not in item:
            raise PatchError(
                422, f"map: {go_value(item)} does not contain declared merge key: {merge_key}",
            )
        index = _index_by_key(result, merge_key, item[merge_key])
        if _directive_of(item) == "delete":
            if index is not None:
                del result[index]
            continue
        merged = _merge_map(result[index] if index is not None else {}, item, path)
        if index is None:
            result.append(merged)
        else:
            result[index] = merged
    return result


def _directive_of(item):
    return item.get(PATCH_DIRECTIVE) if isinstance(item, dict) else None


def _index_by_key(items, merge_key, key_value):
    for index, item in enumerate(items):
        if isinstance(item, dict) and item.get(merge_key) == key_value:
            return index
    return None


def _delete_from_primitive_list(result, field, values):
    if isinstance(result.get(field), list) and isinstance(values, list):
        result[field] = [item for item in result[field] if item not in values]


def _unique(items):
    unique = []
    for item in items:
        if item not in unique:
            unique.append(item)
    return unique


def strip_directives(value):
    """Copy ``value`` without any ``$``-prefixed key, at any depth."""
    if isinstance(value, dict):
        return {k: strip_directives(v) for k, v in value.items() if not k.startswith("$")}
    if isinstance(value, list):
        return [strip_directives(item) for item in value]
    return value


def go_value(value) -> str:
    """A decoded JSON value as Go's %v prints it (maps with sorted keys, float64 numbers)."""
    if isinstance(value, dict):
        return "map[" + " ".join(f"{key}:{go_value(value[key])}" for key in sorted(value)) + "]"
    if isinstance(value, list):
        return "[" + " ".join(go_value(item) for item in value) + "]"
    if value is None:
        return "<nil>"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        number = float(value)
        return str(int(number)) if number.is_integer() and abs(number) < 1e21 else repr(number)
    return str(value)
