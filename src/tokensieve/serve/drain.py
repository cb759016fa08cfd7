"""Graceful shutdown. The first SIGTERM (or Ctrl-C) stops admitting: new /v1 requests get a 503 and /health says
`draining`, so a load balancer moves on. The requests in flight, queued ones included, finish within a timeout,
then the process exits 0. A second signal exits at once."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass

import uvicorn
from fastapi.responses import JSONResponse

from tokensieve.serve.errors import error_response

RETRY_AFTER_S = 5


@dataclass
class DrainState:
    draining: bool = False
    in_flight: int = 0  # /v1 requests whose response is not completely sent


class Drain:
    """ASGI middleware: counts the /v1 requests in flight; while draining, answers new ones 503."""

    def __init__(self, app, state: DrainState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not (path == "/v1" or path.startswith("/v1/") or path == "/health"):
            return await self.app(scope, receive, send)
        if self.state.draining:
            if path == "/health":
                response = JSONResponse({"status": "draining", "in_flight": self.state.in_flight}, status_code=503)
            else:
                response = error_response(503, "the server is shutting down; retry on another server",
                                          code="shutting_down", headers={"Retry-After": str(RETRY_AFTER_S)})
            return await response(scope, receive, send)
        if path == "/health":
            return await self.app(scope, receive, send)
        self.state.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.state.in_flight -= 1


class GracefulServer(uvicorn.Server):
    """uvicorn, with the drain above in place of its own signal handling (which closes the socket at once and
    re-raises the signal, so the process never exits 0). `cut_off` counts the requests the timeout cut short."""

    def __init__(self, config: uvicorn.Config, state: DrainState, timeout_s: float,
                 say: Callable[[str], None] = print) -> None:
        super().__init__(config)
        self.state, self.timeout_s, self.say = state, timeout_s, say
        self.deadline = float("inf")
        self.cut_off = 0

    def handle_exit(self, sig: int, frame) -> None:
        name = signal.Signals(sig).name
        if self.state.draining or self.should_exit:
            self.say(f"second {name}: exiting now, {self.state.in_flight} requests in flight are lost")
            os._exit(128 + sig)
        self.state.draining = True
        self.deadline = time.monotonic() + self.timeout_s
        self.say(f"{name}: draining {self.state.in_flight} requests in flight (at most {self.timeout_s:g} s); "
                 "new requests get 503; a second signal exits at once")

    async def on_tick(self, counter: int) -> bool:
        if self.state.draining and not self.should_exit:
            if self.state.in_flight == 0:
                self.should_exit = True
            elif time.monotonic() >= self.deadline:
                self.cut_off = self.state.in_flight
                self.should_exit = self.force_exit = True
        return await super().on_tick(counter)
