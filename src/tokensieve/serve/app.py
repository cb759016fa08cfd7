"""The OpenAI-compatible HTTP front of an Engine (FastAPI): completions, chat completions, models, health, metrics.

Every error is OpenAI's JSON error object with a 4xx status, and the server goes on serving. A client that
disconnects (streaming or not) cancels its sequences, which leave the batch and free their memory at once.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException

from tokensieve.serve.auth import ApiKeys
from tokensieve.serve.drain import Drain, DrainState
from tokensieve.serve.engine import Engine, Event, RequestError, Sequence
from tokensieve.serve.engine import Request as EngineRequest
from tokensieve.serve.errors import error_response
from tokensieve.serve.metrics import ServeMetrics
from tokensieve.serve.protocol import ChatRequest, CompletionRequest
from tokensieve.serve.sampling import Sampling

DISCONNECT_POLL_S = 0.25


class BodyLimit:
    """ASGI middleware: a request body over `limit` bytes is answered 413 before it reaches a handler."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.limit:
            return await self._too_large(scope, receive, send)
        chunks, size, more = [], 0, True
        while more:  # a body without (or lying about) its length is counted as it arrives
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            more = message.get("more_body", False)
            if size > self.limit:
                return await self._too_large(scope, receive, send)
        body, replayed = b"".join(chunks), False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _too_large(self, scope, receive, send):
        response = error_response(413, f"the request body exceeds {self.limit} bytes")
        await response(scope, receive, send)


def create_app(engine: Engine, model_name: str, *, max_body_bytes: int = 1 << 20, default_max_tokens: int = 256,
               metrics: ServeMetrics | None = None, replica: str | None = None, api_keys: tuple[str, ...] = (),
               metrics_keyed: bool = False) -> FastAPI:
    """The app for one engine (started by the caller). `replica` names it in /health (scale-out); with
    `api_keys`, every /v1 route (and /metrics if `metrics_keyed`) needs one of them (`serve.auth`)."""
    app = FastAPI(title="tokensieve", docs_url=None, redoc_url=None)
    metrics = metrics or engine.metrics or ServeMetrics(engine.pool.capacity)
    engine.metrics = metrics
    tokenizer = engine.tokenizer
    created = int(time.time())

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, error: RequestValidationError):
        first = error.errors()[0] if error.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        message = first.get("msg", "invalid request")
        if first.get("type") == "json_invalid":
            message, where = "the request body is not valid JSON", ""
        metrics.answered("-", 400)
        return error_response(400, f"{where}: {message}" if where else message, param=where or None)

    @app.exception_handler(HTTPException)
    async def _http(request: Request, error: HTTPException):
        return error_response(error.status_code, str(error.detail))

    @app.get("/health")
    async def health():
        return {"status": "ok", "model": model_name, "replica": replica, "running": engine.busy,
                "queued": len(engine.waiting), "kv_bytes_in_use": engine.pool.in_use,
                "kv_pool_bytes": engine.pool.capacity}

    @app.get("/metrics")
    async def prometheus():
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.get("/v1/models")
    async def list_models():
        return {"object": "list", "data": [{"id": model_name, "object": "model", "created": created,
                                            "owned_by": "tokensieve"}]}

    def check(body) -> JSONResponse | None:
        if body.model != model_name:
            metrics.answered("-", 404)
            return error_response(404, f"the model {body.model!r} does not exist; this server serves "
                                       f"{model_name!r}", param="model", code="model_not_found")
        return None

    def requests_for(body, prompts: list[list[int]], max_tokens: int | None) -> list[EngineRequest]:
        options = body.tokensieve
        sampling = Sampling(temperature=body.temperature, top_p=body.top_p, seed=body.seed)
        return [EngineRequest(ids, max_tokens if max_tokens is not None else
                              min(default_max_tokens, max(1, (engine.context or 10**9) - len(ids))),
                              options.policy if options else None, options.budget if options else None,
                              sampling, body.stops, kv_dtype=options.kv_dtype if options else None)
                for ids in prompts]

    async def run(request: Request, body, prompts, max_tokens, kind: str):
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()
        seqs: list[Sequence] = []
        try:
            for index, engine_request in enumerate(requests_for(body, prompts, max_tokens)):
                def emit(event: Event, index=index):
                    loop.call_soon_threadsafe(queue.put_nowait, (index, event))
                seqs.append(engine.submit(engine_request, emit))
        except RequestError as error:
            for seq in seqs:
                engine.cancel(seq)
            metrics.answered("-", error.status)
            headers = {"Retry-After": str(int(error.retry_after or 1))} if error.status == 429 else None
            return error_response(error.status, str(error), headers=headers)
        ident = f"{'chatcmpl' if kind == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"
        if body.stream:
            include_usage = bool(body.stream_options and body.stream_options.include_usage)
            return StreamingResponse(stream(request, queue, seqs, ident, kind, include_usage),
                                     media_type="text/event-stream")
        return await collect(request, queue, seqs, ident, kind)

    async def events(request: Request, queue: asyncio.Queue, seqs: list[Sequence]) -> AsyncIterator:
        """(index, event) until every sequence finished; a client gone cancels them all."""
        left = len(seqs)
        try:
            while left:
                try:
                    index, event = await asyncio.wait_for(queue.get(), DISCONNECT_POLL_S)
                except TimeoutError:
                    if await request.is_disconnected():
                        return
                    continue
                if event.finish_reason is not None or event.error is not None:
                    left -= 1
                    metrics.answered(seqs[index].policy.name, 500 if event.error else 200, event.usage)
                yield index, event
        finally:
            if left:
                for seq in seqs:
                    engine.cancel(seq)

    async def collect(request, queue, seqs, ident, kind):
        texts, finals = [""] * len(seqs), [None] * len(seqs)
        async for index, event in events(request, queue, seqs):
            texts[index] += event.text
            if event.finish_reason or event.error:
                finals[index] = event
        if any(f is None for f in finals):
            return Response(status_code=499)  # the client left; nobody reads this
        failed = next((f for f in finals if f.error), None)
        if failed:
            return error_response(500, failed.error)
        usage = merge_usage([f.usage for f in finals])
        choices = []
        for index, (text, final) in enumerate(zip(texts, finals, strict=True)):
            if kind == "chat":
                choices.append({"index": index, "message": {"role": "assistant", "content": text},
                                "finish_reason": final.finish_reason, "logprobs": None})
            else:
                choices.append({"index": index, "text": text, "finish_reason": final.finish_reason,
                                "logprobs": None})
        return {"id": ident, "object": "chat.completion" if kind == "chat" else "text_completion",
                "created": int(time.time()), "model": model_name, "choices": choices, "usage": usage}

    async def stream(request, queue, seqs, ident, kind, include_usage) -> AsyncIterator[str]:
        object_name = "chat.completion.chunk" if kind == "chat" else "text_completion"
        usages = []

        def chunk(choices, usage=None) -> str:
            payload = {"id": ident, "object": object_name, "created": int(time.time()), "model": model_name,
                       "choices": choices}
            if include_usage:
                payload["usage"] = usage
            return f"data: {json.dumps(payload)}\n\n"

        if kind == "chat":
            yield chunk([{"index": i, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
                         for i in range(len(seqs))])
        async for index, event in events(request, queue, seqs):
            if event.error:
                yield f"data: {json.dumps({'error': {'message': event.error, 'type': 'server_error'}})}\n\n"
                continue
            if not event.text and not event.finish_reason:
                continue
            if kind == "chat":
                delta = {"content": event.text} if event.text else {}
                choice = {"index": index, "delta": delta, "finish_reason": event.finish_reason}
            else:
                choice = {"index": index, "text": event.text, "finish_reason": event.finish_reason,
                          "logprobs": None}
            if event.usage:
                usages.append(event.usage)
            yield chunk([choice])
        if include_usage and len(usages) == len(seqs):
            yield chunk([], merge_usage(usages))
        yield "data: [DONE]\n\n"

    @app.post("/v1/completions")
    async def completions(body: CompletionRequest, request: Request):
        if (error := check(body)) is not None:
            return error
        if body.echo or body.logprobs is not None:
            metrics.answered("-", 400)
            return error_response(400, "echo and logprobs are not supported", param="echo")
        if len(body.prompts) > engine.max_batch:  # before tokenizing: one request may not outgrow a batch
            metrics.answered("-", 400)
            return error_response(400, f"a list of {len(body.prompts)} prompts exceeds this server's batch of "
                                       f"{engine.max_batch} (--max-batch)", param="prompt")
        prompts = [tokenizer(p).input_ids for p in body.prompts]
        return await run(request, body, prompts, body.max_tokens, "completion")

    @app.post("/v1/chat/completions")
    async def chat(body: ChatRequest, request: Request):
        if (error := check(body)) is not None:
            return error
        messages = [{"role": m.role, "content": m.text} for m in body.messages]
        text = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tokenizer(text, add_special_tokens=False).input_ids
        limit = body.max_completion_tokens if body.max_completion_tokens is not None else body.max_tokens
        return await run(request, body, [ids], limit, "chat")

    app.state.drain = DrainState()
    app.add_middleware(BodyLimit, limit=max_body_bytes)
    app.add_middleware(Drain, state=app.state.drain)
    app.add_middleware(ApiKeys, keys=api_keys, metrics_keyed=metrics_keyed)  # added last: runs first
    return app


def merge_usage(usages: list[dict]) -> dict:
    prompt = sum(u["prompt_tokens"] for u in usages)
    completion = sum(u["completion_tokens"] for u in usages)
    merged = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    merged["tokensieve"] = usages[0]["tokensieve"] if len(usages) == 1 else [u["tokensieve"] for u in usages]
    return merged
