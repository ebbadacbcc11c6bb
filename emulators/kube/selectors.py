"""Label and field selectors in the query-string syntax of `labelSelector` / `fieldSelector`.

Label selectors take the full set-based grammar (`a=b`, `a==b`, `a!=b`, `a in (x,y)`,
`a notin (x)`, `a`, `!a`). Field selectors take `path=value`, `path==value`,
`path!=value`; unlike the real server, any dotted field path is accepted (the real one has a
per-kind allow list), because kubectl describe and our tests only use the allowed ones.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from emulators.kube.errors import bad_request

Matcher = Callable[[dict[str, Any]], bool]

_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_OP = re.compile(rf"^\s*({_KEY})\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQ_OP = re.compile(rf"^\s*({_KEY})\s*(==|=|!=)\s*(\S*)\s*$")
_EXISTS = re.compile(rf"^\s*(!?)\s*({_KEY})\s*$")


def _split_top_level(text: str) -> list[str]:
    """Split on commas outside parentheses: `a in (x,y),b` → [`a in (x,y)`, `b`]."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


def _label_requirement(text: str) -> Callable[[dict[str, str]], bool]:
    if m := _SET_OP.match(text):
        key, op = m.group(1), m.group(3)
        values = {v.strip() for v in m.group(4).split(",") if v.strip()}
        if op == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if m := _EQ_OP.match(text):
        key, op, value = m.group(1), m.group(3), m.group(4)
        if op == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if m := _EXISTS.match(text):
        negate, key = m.group(1) == "!", m.group(2)
        return (lambda labels: key not in labels) if negate else (lambda labels: key in labels)
    raise bad_request(f"unable to parse requirement: found '{text.strip()}', "
                      "expected: in, notin, =, ==, !=, gt, lt")


def parse_label_selector(text: str | None) -> Callable[[dict[str, str]], bool] | None:
    """A predicate over a labels dict, or None for "everything"."""
    if not text or not text.strip():
        return None
    requirements = [_label_requirement(part) for part in _split_top_level(text)]
    return lambda labels: all(req(labels) for req in requirements)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def field_value(obj: dict[str, Any], path: str) -> str:
    """The string form of a dotted field path, "" when absent (as field selectors see it)."""
    value: Any = obj
    for part in path.split("."):
        if not isinstance(value, dict):
            return ""
        value = value.get(part)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _field_requirement(text: str) -> Matcher:
    for op in ("!=", "==", "="):
        index = text.find(op)
        if index > 0:
            path, value = text[:index].strip(), text[index + len(op):].strip()
            value = value.replace("\\,", ",").replace("\\=", "=").replace("\\\\", "\\")
            if op == "!=":
                return lambda obj: field_value(obj, path) != value
            return lambda obj: field_value(obj, path) == value
    raise bad_request(f'invalid selector: \'{text}\'; can\'t understand \'{text}\'')


def parse_field_selector(text: str | None) -> Matcher | None:
    """A predicate over a whole object, or None for "everything"."""
    if not text or not text.strip():
        return None
    requirements = [_field_requirement(part) for part in _split_unescaped(text, ",")
                    if part.strip()]
    return lambda obj: all(req(obj) for req in requirements)


def object_matcher(label_selector: str | None, field_selector: str | None) -> Matcher | None:
    """Both selectors as one predicate over an object (None when both are empty)."""
    labels = parse_label_selector(label_selector)
    fields = parse_field_selector(field_selector)
    if labels is None and fields is None:
        return None

    def matches(obj: dict[str, Any]) -> bool:
        if labels is not None and not labels(obj.get("metadata", {}).get("labels") or {}):
            return False
        return fields is None or fields(obj)
    return matches


def selector_matches(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """A metav1.LabelSelector (matchLabels + matchExpressions) against labels; None matches
    nothing, {} matches everything (as NetworkPolicy and EndpointSlice controllers read it)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and key in labels and labels[key] in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True
