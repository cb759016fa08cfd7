"""API keys for the server: `Authorization: Bearer KEY` on every /v1 route (and /metrics when keyed), checked
before the body is read. A missing or wrong key is OpenAI's 401 error object; keys are compared in constant time
and never logged or echoed."""

from __future__ import annotations

import hmac
import ipaddress
import os

from fastapi.responses import JSONResponse

from tokensieve.serve.errors import error_response

ENV = "TOKENSIEVE_API_KEY"  # one key, or several separated by commas


def keys_from(given: list[str] | None, environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """The keys of `--api-key` (repeatable), else of TOKENSIEVE_API_KEY; empty entries dropped."""
    environ = os.environ if environ is None else environ
    raw = list(given or []) or environ.get(ENV, "").split(",")
    return tuple(k.strip() for k in raw if k.strip())


def exposed_warning(host: str, keys: tuple[str, ...]) -> str | None:
    """A warning line when the server listens beyond loopback without a key, else None."""
    if keys:
        return None
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    return None if loopback else (f"warning: serving on {host} without an API key: anyone who can reach it can use "
                                  f"it (set --api-key or {ENV})")


def matches(presented: str, keys: tuple[str, ...]) -> bool:
    """Constant time in the presented key: every configured key is compared, whatever matched before."""
    found = False
    for key in keys:
        found |= hmac.compare_digest(presented.encode(), key.encode())
    return found


def unauthorized(message: str) -> JSONResponse:
    return error_response(401, message, code="invalid_api_key", headers={"WWW-Authenticate": "Bearer"})


class ApiKeys:
    """ASGI middleware: paths under /v1 (and /metrics when `metrics_keyed`) need a configured key; /health stays
    open. With no keys configured it passes everything through."""

    def __init__(self, app, keys: tuple[str, ...], metrics_keyed: bool = False) -> None:
        self.app, self.keys, self.metrics_keyed = app, tuple(keys), metrics_keyed

    def guarded(self, path: str) -> bool:
        return path == "/v1" or path.startswith("/v1/") or (self.metrics_keyed and path == "/metrics")

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.keys or not self.guarded(scope.get("path", "")):
            return await self.app(scope, receive, send)
        header = dict(scope.get("headers") or []).get(b"authorization", b"").decode("latin-1")
        scheme, _, presented = header.partition(" ")
        if not header:
            response = unauthorized("missing API key: send 'Authorization: Bearer KEY'")
        elif scheme.lower() != "bearer" or not matches(presented.strip(), self.keys):
            response = unauthorized("incorrect API key provided")
        else:
            return await self.app(scope, receive, send)
        await response(scope, receive, send)
