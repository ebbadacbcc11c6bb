"""metav1.Status failures, word for word as kube-apiserver renders them.

Clients branch on `reason` and `code` (the Python client raises ApiException(status=code);
client-go maps `reason` to `errors.IsNotFound`, `IsConflict`, ...), and operators read the
message, so both are copied from the real server. The backend raises `ApiError`; the HTTP
layer renders `.status()` with `.code`.

    ApiError(code, reason, message, details)
      NotFound 404 · AlreadyExists 409 · Conflict 409 · Invalid 422 · BadRequest 400
      Forbidden 403 · MethodNotAllowed 405 · UnsupportedMediaType 415 · Gone/Expired 410
      ServiceUnavailable 503
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """A failure the API server reports as a `Status` object."""

    def __init__(self, code: int, reason: str, message: str,
                 details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": self.message, "reason": self.reason,
        }
        if self.details is not None:
            body["details"] = self.details
        body["code"] = self.code
        return body


def _details(qualified: str, name: str, group: str) -> dict[str, Any]:
    # details.kind is the plural resource name here, not the Kind (as the real server does).
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = qualified.split(".", 1)[0]
    return details


def not_found(qualified: str, name: str, group: str = "") -> ApiError:
    return ApiError(404, "NotFound", f'{qualified} "{name}" not found',
                    _details(qualified, name, group))


def already_exists(qualified: str, name: str, group: str = "") -> ApiError:
    return ApiError(409, "AlreadyExists", f'{qualified} "{name}" already exists',
                    _details(qualified, name, group))


def conflict(qualified: str, name: str, group: str = "") -> ApiError:
    message = (f'Operation cannot be fulfilled on {qualified} "{name}": the object has been '
               "modified; please apply your changes to the latest version and try again")
    return ApiError(409, "Conflict", message, _details(qualified, name, group))


def invalid(kind: str, name: str, group: str, causes: list[tuple[str, str, str]]) -> ApiError:
    """422 from field errors given as (field, reason, detail), e.g.
    ("spec.clusterIP", "FieldValueInvalid", 'Invalid value: "1.2.3.4": provided IP is ...')."""
    parts = [f"{field}: {detail}" for field, _, detail in causes]
    joined = parts[0] if len(parts) == 1 else "[" + ", ".join(parts) + "]"
    details: dict[str, Any] = {"name": name}
    if group:
        details["group"] = group
    details["kind"] = kind
    details["causes"] = [{"reason": reason, "message": detail, "field": field}
                         for field, reason, detail in causes]
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {joined}', details)


def bad_request(message: str) -> ApiError:
    return ApiError(400, "BadRequest", message)


def forbidden(message: str, qualified: str = "", name: str = "", group: str = "") -> ApiError:
    details = _details(qualified, name, group) if qualified else None
    return ApiError(403, "Forbidden", message, details)


def namespace_terminating(qualified: str, name: str, namespace: str, group: str = "") -> ApiError:
    message = (f'{qualified} "{name}" is forbidden: unable to create new content in namespace '
               f"{namespace} because it is being terminated")
    return forbidden(message, qualified, name, group)


def method_not_allowed() -> ApiError:
    return ApiError(405, "MethodNotAllowed",
                    "the server does not allow this method on the requested resource", {})


def unsupported_media_type(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f'the body of the request was in an unknown format - accepted media types '
                    f'include: application/json-patch+json, application/merge-patch+json, '
                    f'application/strategic-merge-patch+json (got "{content_type}")')


def unsupported_body(content_type: str) -> ApiError:
    return ApiError(415, "UnsupportedMediaType",
                    f'the body of the request was in an unknown format - accepted media types '
                    f'include: application/json, application/yaml (got "{content_type}")')


def route_not_found() -> ApiError:
    return ApiError(404, "NotFound", "the server could not find the requested resource", {})


def too_old_resource_version(requested: int, oldest: int) -> ApiError:
    # The watch cache's wording; the event stream carries it in an ERROR event.
    return ApiError(410, "Expired", f"too old resource version: {requested} ({oldest})")


def continue_expired() -> ApiError:
    return ApiError(410, "Expired",
                    "The provided continue parameter is too old to display a consistent list "
                    "result. You can start a new list without the continue parameter, or use "
                    "the continue value from the response.")


def unavailable(message: str = "the server is currently unable to handle the request") -> ApiError:
    return ApiError(503, "ServiceUnavailable", message, {})


def success(qualified: str, name: str, uid: str, group: str = "") -> dict[str, Any]:
    """The `Status` some deletes answer with instead of the object."""
    details = _details(qualified, name, group)
    details["uid"] = uid
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
            "details": details}
