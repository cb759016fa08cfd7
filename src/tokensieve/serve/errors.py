"""OpenAI's error object, the one shape every refusal of the server takes (4xx, 503 while draining)."""

from __future__ import annotations

from fastapi.responses import JSONResponse

ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 404: "not_found_error",
               413: "invalid_request_error", 429: "rate_limit_exceeded", 500: "server_error", 503: "server_error"}


def error_response(status: int, message: str, param: str | None = None, code: str | None = None,
                   headers: dict | None = None) -> JSONResponse:
    message = message.replace("\r", "\\r").replace("\n", "\\n")  # one line, whatever the client's text held
    body = {"error": {"message": message, "type": ERROR_TYPES.get(status, "invalid_request_error"),
                      "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)
