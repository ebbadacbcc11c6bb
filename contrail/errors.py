"""What can go wrong talking to the Contrail config API, as one small tree.

    ContrailError                 status, method, url and the server's message
     +-- BadRequest               400: our request is wrong; retrying cannot help
     +-- PermissionDenied         401 (after one token refresh) and 403
     +-- NotFound                 404: unknown uuid, fq_name or type
     +-- Conflict                 409, split by the server's message:
     |    +-- AlreadyExists           fq_name or uuid taken, IP address in use, duplicate rule
     |    +-- RefsExist               delete refused: children or back-refs still present
     +-- Unavailable              connection errors, timeouts, 502/503/504 after retries

The HTTP library stays behind this tree: callers branch on these classes only.
"""

from __future__ import annotations


class ContrailError(Exception):
    """A Contrail API call failed; `retryable` says whether trying later may help."""

    retryable = False

    def __init__(self, message: str, *, status: int | None = None, method: str = "",
                 url: str = ""):
        super().__init__(message)
        self.message, self.status, self.method, self.url = message, status, method, url

    def __str__(self) -> str:
        where = f"{self.method} {self.url}".strip()
        status = f" -> {self.status}" if self.status else ""
        return f"{where}{status}: {self.message}" if where else self.message


class BadRequest(ContrailError):
    pass


class PermissionDenied(ContrailError):
    pass


class NotFound(ContrailError):
    pass


class Conflict(ContrailError):
    pass


class AlreadyExists(Conflict):
    pass


class RefsExist(Conflict):
    pass


class Unavailable(ContrailError):
    retryable = True


TRANSIENT_STATUSES = frozenset({502, 503, 504})


def error_for(status: int, method: str, url: str, text: str) -> ContrailError:
    """The exception for an HTTP error answer (the real server's texts are in vnc-rest.md 3.1)."""
    message = text.strip() or f"HTTP {status}"
    cls: type[ContrailError]
    if status == 409:
        cls = RefsExist if "Delete when" in message or "still" in message else AlreadyExists
    else:
        cls = {400: BadRequest, 401: PermissionDenied, 403: PermissionDenied,
               404: NotFound}.get(status, Unavailable if status in TRANSIENT_STATUSES
                                  else ContrailError)
    return cls(message, status=status, method=method, url=url)
