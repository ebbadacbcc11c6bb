"""Kubernetes label selectors: parse (with clear errors for bad input) and match (pure).

A selector is matchLabels AND every matchExpression (In, NotIn, Exists, DoesNotExist); the
empty selector `{}` selects everything. (Upstream kept only the last In value, treated NotIn
as In, ignored Exists/DoesNotExist and dropped matchLabels when expressions were present.)
"""

from __future__ import annotations

from dataclasses import dataclass

from tasks.outcomes import BadInput

OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")


@dataclass(frozen=True)
class Requirement:
    key: str
    operator: str
    values: frozenset[str] = frozenset()

    def matches(self, labels: dict[str, str]) -> bool:
        if self.operator == "In":
            return self.key in labels and labels[self.key] in self.values
        if self.operator == "NotIn":
            return self.key not in labels or labels[self.key] not in self.values
        if self.operator == "Exists":
            return self.key in labels
        return self.key not in labels  # DoesNotExist


@dataclass(frozen=True)
class Selector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: dict[str, str] | None) -> bool:
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    @property
    def everything(self) -> bool:
        return not self.requirements

    def key(self) -> str:
        """A canonical text of the selector (for names and hashing)."""
        return ",".join(f"{r.key} {r.operator} {'|'.join(sorted(r.values))}"
                        for r in sorted(self.requirements, key=lambda r: (r.key, r.operator)))


def parse(selector: dict | None, where: str) -> Selector:
    """A LabelSelector from the API's JSON; `where` names it in error messages."""
    if selector is None:
        return Selector()
    if not isinstance(selector, dict):
        raise BadInput(f"{where}: a label selector must be an object")
    requirements = [Requirement(k, "In", frozenset([str(v)]))
                    for k, v in (selector.get("matchLabels") or {}).items()]
    for i, expr in enumerate(selector.get("matchExpressions") or []):
        operator, key = expr.get("operator"), expr.get("key")
        values = expr.get("values") or []
        if operator not in OPERATORS:
            raise BadInput(f"{where}.matchExpressions[{i}]: unknown operator {operator!r} "
                           f"(expected one of {', '.join(OPERATORS)})")
        if not key:
            raise BadInput(f"{where}.matchExpressions[{i}]: key is required")
        if operator in ("In", "NotIn") and not values:
            raise BadInput(f"{where}.matchExpressions[{i}]: {operator} needs values")
        if operator in ("Exists", "DoesNotExist") and values:
            raise BadInput(f"{where}.matchExpressions[{i}]: {operator} takes no values")
        requirements.append(Requirement(key, operator, frozenset(map(str, values))))
    return Selector(tuple(requirements))
