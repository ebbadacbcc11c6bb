"""The PATCH formats: JSON merge patch (RFC 7386), strategic merge patch, JSON patch (RFC 6902).

Pure functions over plain JSON values; they never mutate their inputs. Strategic merge follows
`k8s.io/apimachinery/pkg/util/strategicpatch` for what kubectl and the Python client send:
merge-keyed lists (`patchmeta.SCHEMA`), the `$patch: replace|delete|merge` directive on maps
and list items, `$retainKeys`, `$setElementOrder/<field>` and
`$deleteFromPrimitiveList/<field>`; other lists are replaced whole.
"""

from __future__ import annotations

import copy
from typing import Any

from emulators.kube.errors import ApiError, bad_request
from emulators.kube.patchmeta import ListMeta, child_type

_ORDER, _DELETE_FROM = "$setElementOrder/", "$deleteFromPrimitiveList/"


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: maps merge recursively, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def strategic_merge_patch(original: dict[str, Any], patch: dict[str, Any],
                          kind: str) -> dict[str, Any]:
    if not isinstance(patch, dict):
        raise bad_request("strategic merge patch must be a JSON object")
    merged = _merge_map(original, patch, kind)
    return merged if merged is not None else {}


def _merge_map(original: Any, patch: dict[str, Any], type_name: str | None) -> Any:
    directive = patch.get("$patch")
    if directive == "delete":
        return None
    if directive == "replace":
        return _strip_directives({k: v for k, v in patch.items() if k != "$patch"})
    result = copy.deepcopy(original) if isinstance(original, dict) else {}
    orders: dict[str, list[Any]] = {}
    for key, value in patch.items():
        if key in ("$patch", "$retainKeys"):
            continue
        if key.startswith(_ORDER):
            orders[key[len(_ORDER):]] = value or []
        elif key.startswith(_DELETE_FROM):
            field = key[len(_DELETE_FROM):]
            doomed = set(map(_hashable, value or []))
            result[field] = [v for v in result.get(field) or [] if _hashable(v) not in doomed]
        elif value is None:
            result.pop(key, None)
        else:
            merged = _merge_value(result.get(key), value, child_type(type_name, key))
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
    for field, order in orders.items():
        if isinstance(result.get(field), list):
            meta = child_type(type_name, field)
            key_name = meta.merge_key if isinstance(meta, ListMeta) else None
            result[field] = _reorder(result[field], order, key_name)
    if "$retainKeys" in patch:
        keep = set(patch["$retainKeys"] or [])
        result = {k: v for k, v in result.items() if k in keep}
    return result


def _merge_value(original: Any, value: Any, meta: str | ListMeta | None) -> Any:
    if isinstance(value, dict):
        type_name = meta if isinstance(meta, str) else None
        return _merge_map(original, value, type_name)
    if isinstance(value, list) and isinstance(meta, ListMeta):
        return _merge_list(original if isinstance(original, list) else [], value, meta)
    return _strip_directives(copy.deepcopy(value))


def _merge_list(original: list[Any], patch: list[Any], meta: ListMeta) -> list[Any]:
    if meta.merge_key is None:
        # A set of primitives: union, keeping the original order first.
        result = list(original)
        seen = set(map(_hashable, result))
        for item in patch:
            if _hashable(item) not in seen:
                result.append(item)
                seen.add(_hashable(item))
        return result
    key = meta.merge_key
    if any(isinstance(i, dict) and i.get("$patch") == "replace" for i in patch):
        return [_strip_directives(i) for i in patch
                if not (isinstance(i, dict) and i.get("$patch") == "replace")]
    result = copy.deepcopy(original)
    for item in patch:
        if not isinstance(item, dict):
            raise bad_request(f"merging an object in json but data type is not a map: {item!r}")
        index = next((n for n, o in enumerate(result)
                      if isinstance(o, dict) and o.get(key) == item.get(key)), None)
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strip_directives(item))
        else:
            result[index] = _merge_map(result[index], item, meta.item_type)
    return result


def _reorder(items: list[Any], order: list[Any], key: str | None) -> list[Any]:
    def ident(item: Any) -> Any:
        return _hashable(item.get(key) if key and isinstance(item, dict) else item)

    rank = {ident(o): n for n, o in enumerate(order)}
    ranked = [i for i in items if ident(i) in rank]
    ranked.sort(key=lambda i: rank[ident(i)])
    return ranked + [i for i in items if ident(i) not in rank]


def _strip_directives(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip_directives(v) for k, v in value.items()
                if not k.startswith("$")}
    if isinstance(value, list):
        return [_strip_directives(v) for v in value]
    return value


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, dict | list) else value


# --- RFC 6902 JSON patch -------------------------------------------------------------------

def json_patch(document: Any, operations: Any) -> Any:
    if not isinstance(operations, list):
        raise bad_request("json patch must be a JSON array of operations")
    result = copy.deepcopy(document)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise bad_request(f"invalid JSON patch operation: {op!r}")
        result = _apply_op(result, op)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f'json patch path "{path}" must start with "/"')
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _parent(doc: Any, parts: list[str], path: str) -> Any:
    node = doc
    for part in parts[:-1]:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, ValueError, TypeError):
            raise _failed(f"doc is missing path: {path}") from None
    return node


def _failed(message: str) -> ApiError:
    return ApiError(422, "Invalid", f"the server rejected our request due to an error in our "
                    f"request: {message}")


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent, last = _parent(doc, parts, path), parts[-1]
    try:
        return parent[int(last)] if isinstance(parent, list) else parent[last]
    except (KeyError, IndexError, ValueError, TypeError):
        raise _failed(f"doc is missing path: {path}") from None


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    parent, last = _parent(doc, parts, path), parts[-1]
    try:
        if isinstance(parent, list):
            return parent.pop(int(last))
        return parent.pop(last)
    except (KeyError, IndexError, ValueError, TypeError):
        raise _failed(f"doc is missing path: {path}") from None


def _add(doc: Any, path: str, value: Any, replace: bool = False) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent, last = _parent(doc, parts, path), parts[-1]
    if isinstance(parent, list):
        index = len(parent) if last == "-" else int(last)
        if replace:
            parent[index] = value
        else:
            parent.insert(index, value)
    elif isinstance(parent, dict):
        if replace and last not in parent:
            raise _failed(f"doc is missing key: {path}")
        parent[last] = value
    else:
        raise _failed(f"doc is missing path: {path}")
    return doc


def _apply_op(doc: Any, op: dict[str, Any]) -> Any:
    kind, path = op["op"], op["path"]
    if kind == "add":
        return _add(doc, path, copy.deepcopy(op.get("value")))
    if kind == "remove":
        _remove(doc, path)
        return doc
    if kind == "replace":
        return _add(doc, path, copy.deepcopy(op.get("value")), replace=True)
    if kind in ("move", "copy"):
        source = op.get("from", "")
        value = _remove(doc, source) if kind == "move" else copy.deepcopy(_get(doc, source))
        return _add(doc, path, value)
    if kind == "test":
        if _get(doc, path) != op.get("value"):
            raise _failed(f"testing value {path} failed")
        return doc
    raise bad_request(f"Unexpected kind: {kind}")
