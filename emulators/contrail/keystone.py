"""A minimal Keystone v3 on the same server, and the token check the config API does with it.

`POST /v3/auth/tokens` with password auth (the body `vnc_api` sends) answers 201 with the token
in `X-Subject-Token`; `GET /v3/auth/tokens` validates one. With `keystone=True` every API call
except `GET /` (white-listed like the real server), `/v3/...` and `/_emulator/...` needs a
valid `X-Auth-Token`, else 401. Tokens can be expired or revoked from the admin endpoint so a
client's re-authenticate-on-401 path can be tested.
"""

from __future__ import annotations

import datetime
import secrets
import time
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from emulators.contrail.faults import ADMIN_PREFIX, KEYSTONE_PREFIX

DEFAULT_USERS = {"admin": "contrail123"}


@dataclass
class Token:
    user: str
    project: str
    expires_at: float  # wall clock
    revoked: bool = False

    def valid(self) -> bool:
        return not self.revoked and time.time() < self.expires_at


def _iso(stamp: float) -> str:
    return datetime.datetime.fromtimestamp(stamp, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Keystone:
    """Users, issued tokens and the admin operations on them."""

    def __init__(self, users: dict[str, str] | None = None, ttl: float = 3600.0) -> None:
        self.users = dict(users or DEFAULT_USERS)
        self.ttl = ttl
        self.tokens: dict[str, Token] = {}

    def issue(self, body: dict[str, Any]) -> tuple[str, Token] | None:
        identity = (body.get("auth") or {}).get("identity") or {}
        user = ((identity.get("password") or {}).get("user")) or {}
        name, password = user.get("name"), user.get("password")
        if "password" not in (identity.get("methods") or []) or self.users.get(name) != password:
            return None
        scope = ((body.get("auth") or {}).get("scope") or {}).get("project") or {}
        token = Token(name, scope.get("name") or "admin", time.time() + self.ttl)
        value = secrets.token_hex(16)
        self.tokens[value] = token
        return value, token

    def valid(self, value: str | None) -> bool:
        token = self.tokens.get(value or "")
        return token is not None and token.valid()

    def revoke(self, value: str | None = None) -> int:
        return self._each(value, lambda t: setattr(t, "revoked", True))

    def expire(self, value: str | None = None) -> int:
        return self._each(value, lambda t: setattr(t, "expires_at", time.time() - 1))

    def _each(self, value: str | None, change) -> int:
        chosen = [self.tokens[value]] if value in self.tokens else (
            list(self.tokens.values()) if value is None else [])
        for token in chosen:
            change(token)
        return len(chosen)


def _token_body(token: Token) -> dict[str, Any]:
    issued = token.expires_at - 3600
    return {"token": {
        "methods": ["password"], "expires_at": _iso(token.expires_at), "issued_at": _iso(issued),
        "user": {"id": token.user, "name": token.user,
                 "domain": {"id": "default", "name": "Default"}},
        "project": {"id": token.project, "name": token.project,
                    "domain": {"id": "default", "name": "Default"}},
        "roles": [{"id": "admin", "name": "admin"}], "catalog": []}}


async def issue_token(request: Request) -> Response:
    keystone: Keystone = request.app.state.emu.keystone
    try:
        body = await request.json()
    except ValueError:
        return PlainTextResponse("Malformed request body", 400)
    issued = keystone.issue(body if isinstance(body, dict) else {})
    if issued is None:
        return JSONResponse({"error": {"code": 401, "title": "Unauthorized",
                                       "message": "The request you have made requires "
                                                  "authentication."}}, 401)
    value, token = issued
    return JSONResponse(_token_body(token), 201, headers={"X-Subject-Token": value})


async def check_token(request: Request) -> Response:
    keystone: Keystone = request.app.state.emu.keystone
    value = request.headers.get("x-subject-token")
    if not keystone.valid(value):
        return PlainTextResponse("Could not find token", 404)
    return JSONResponse(_token_body(keystone.tokens[value]), 200)


routes = [
    Route("/v3/auth/tokens", issue_token, methods=["POST"]),
    Route("/v3/auth/tokens", check_token, methods=["GET"]),
]


class TokenMiddleware:
    """401 for API calls without a valid X-Auth-Token when Keystone mode is on."""

    def __init__(self, app, keystone: Keystone, enabled: bool) -> None:
        self.app = app
        self.keystone = keystone
        self.enabled = enabled

    async def __call__(self, scope, receive, send) -> None:
        path = scope.get("path", "")
        if (not self.enabled or scope["type"] != "http" or path == "/"
                or path.startswith((ADMIN_PREFIX, KEYSTONE_PREFIX))):
            return await self.app(scope, receive, send)
        token = dict(scope["headers"]).get(b"x-auth-token", b"").decode()
        if self.keystone.valid(token):
            return await self.app(scope, receive, send)
        body = b"Authentication required"
        await send({"type": "http.response.start", "status": 401, "headers": [
            (b"content-type", b"text/html; charset=UTF-8"),
            (b"content-length", str(len(body)).encode()),
            (b"www-authenticate", b'Keystone uri="/v3"')]})
        await send({"type": "http.response.body", "body": body})
