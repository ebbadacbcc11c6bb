"""Every error the emulator returns, with the real api-server's status and text, in one place.

The official client branches on the status only (404 -> NoIdError, 409 -> RefsExistError,
400 -> BadRequest, 503 -> retry...) and copies the text body into the exception, so the texts
below follow vnc-rest.md section 3.1 word for word (Python `str()` of lists, like the server's
`%s` formatting). The backend raises `ApiError`; the HTTP layer renders it as a text body.
"""

from __future__ import annotations

# Hrefs inside messages are absolute on the real server; the backend has no request, so it
# writes this placeholder and the HTTP layer replaces it with the request's base URL.
HREF_BASE = "{{base}}"


class ApiError(Exception):
    """A refused request: HTTP status plus the server's plain-text message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _fq(fq_name) -> str:
    return str(list(fq_name))


# 404 ------------------------------------------------------------------------------------------
def no_object(type_: str, uuid: str) -> ApiError:
    return ApiError(404, f"No {type_} object found for id {uuid}")


def id_not_found(uuid: str) -> ApiError:
    return ApiError(404, f"ID {uuid} does not exist")


def name_not_found(fq_name) -> ApiError:
    return ApiError(404, f"Name {_fq(fq_name)} not found")


def unknown_type(type_: str) -> ApiError:
    return ApiError(404, f"Resource type '{type_}' not found")


def tag_not_found(fq_name) -> ApiError:
    return ApiError(404, f"Tag with FQName {':'.join(fq_name)} not found")


def kv_not_found(key: str) -> ApiError:
    return ApiError(404, f"Key {key} not found")


# 409 ------------------------------------------------------------------------------------------
def fq_name_exists(fq_name, uuid: str) -> ApiError:
    return ApiError(409, f"{_fq(fq_name)} already exists with uuid: {uuid}")


def uuid_exists(uuid: str, fq_name) -> ApiError:
    return ApiError(409, f"{uuid} already exists with fq_name: {_fq(fq_name)}")


def children_present(hrefs: list[str]) -> ApiError:
    return ApiError(409, f"Delete when children still present: {hrefs}")


def still_referred(hrefs: list[str]) -> ApiError:
    return ApiError(409, f"Delete when resource still referred: {hrefs}")


def ip_in_use() -> ApiError:
    return ApiError(409, "IP address already in use")


def rule_exists(rule_uuid: str) -> ApiError:
    return ApiError(409, f"Rule already exists : {rule_uuid}")


def protected_delete(fq_name) -> ApiError:
    return ApiError(409, f"Cannot delete system resource {':'.join(fq_name)}")


# 400 ------------------------------------------------------------------------------------------
def bad_request(message: str) -> ApiError:
    return ApiError(400, message)


def no_fq_name() -> ApiError:
    return ApiError(400, "Bad Request, no fq_name in POST body")


def bad_property(detail: str) -> ApiError:
    return ApiError(400, f"Bad property in create: {detail}")


def invalid_uuid() -> ApiError:
    return ApiError(400, "Invalid UUID format")


def invalid_parent_type(parent_type, type_: str) -> ApiError:
    return ApiError(400, f"Invalid parent type: {parent_type} for {type_}")


def missing_parent_type() -> ApiError:
    return ApiError(400, "Missing parent type")


def parent_missing(fq_name, parent_type: str) -> ApiError:
    return ApiError(400, f"Parent {_fq(fq_name)} type {parent_type} does not exist")


def unknown_reference(op: str = "create") -> ApiError:
    return ApiError(400, f"Unknown reference in resource {op}")


def exhausted(vn_fq_name, subnets: list[str], status: int = 400) -> ApiError:
    return ApiError(status, f"Virtual-Network({_fq(vn_fq_name)}) has exhausted subnet({subnets})")


def no_subnets(vn_fq_name, status: int = 400) -> ApiError:
    return ApiError(status, f"Virtual-Network({_fq(vn_fq_name)}) has no defined subnets")


def invalid_subnet(vn_fq_name, subnet_uuid: str, status: int = 400) -> ApiError:
    return ApiError(status, f"Virtual-Network({_fq(vn_fq_name)}) has invalid subnet({subnet_uuid})")


def iip_address_immutable() -> ApiError:
    return ApiError(400, "Instance IP Address can not be changed")


def gateway_for_vm() -> ApiError:
    return ApiError(400, "Gateway IP cannot be used by VM port")


def flat_subnet_needs_l3() -> ApiError:
    return ApiError(400, "flat-subnet is allowed only with l3 network")


def flat_subnet_with_cidr() -> ApiError:
    return ApiError(400, "with flat-subnet, network can not have user-defined subnet")


def vmi_needs_vn() -> ApiError:
    # The real server dies with an unhandled KeyError (500); a clear 400 is kinder to callers.
    return ApiError(400, "virtual-machine-interface needs virtual_network_refs")


# 403 / 401 / 503 ------------------------------------------------------------------------------
def cannot_set(what: str) -> ApiError:
    return ApiError(403, f"Cannot set the {what}")


def auth_required() -> ApiError:
    return ApiError(401, "Authentication required")


def unavailable(reason: str = "Service Unavailable") -> ApiError:
    return ApiError(503, reason)
