"""Serving: `tokensieve serve`, an OpenAI-compatible server with per-request token budgets."""

from __future__ import annotations

from typing import Annotated

import typer

from tokensieve.commands.common import Device, Model, Weights, err, guarded, out
from tokensieve.errors import TokensieveError


@guarded
def serve(
    model: Model = "smollm2-135m",
    policy: Annotated[str, typer.Option("--policy", "-p", help="Default policy (a request may override it).")]
    = "full",
    budget: Annotated[float, typer.Option(help="Default budget: a ratio in (0, 1] of each prompt.")] = 1.0,
    kv_dtype: Annotated[str, typer.Option(help="Default KV storage: fp, int8 or int4 (a request may override "
                                          "it).")] = "fp",
    max_batch: Annotated[int, typer.Option(help="Sequences decoded together at most.")] = 16,
    kv_pool_mb: Annotated[float | None, typer.Option(
        help="KV memory pool in MiB: requests are admitted by the bytes their policy really keeps "
             "(default: unlimited).")] = None,
    prefill_chunk: Annotated[int, typer.Option(help="Prompt tokens per engine step, interleaved with decodes.")]
    = 128,
    max_queue: Annotated[int, typer.Option(help="Requests waiting for admission before 429 answers.")] = 64,
    max_body_kb: Annotated[int, typer.Option(help="Largest request body accepted (413 beyond).")] = 1024,
    max_tokens_default: Annotated[int, typer.Option(help="Chat completions' max_tokens when unset.")] = 256,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    replicas: Annotated[int, typer.Option(help="Engine replicas behind Ray Serve (1 = plain uvicorn).")] = 1,
    device: Device = "cpu",
    weights: Weights = "fp32",
    decode_kernel: Annotated[bool, typer.Option(
        "--decode-kernel", help="CPU: dense one-token decode steps attend through tokensieve's kernel, Quest's "
                                "decode step runs as one compiled call, and int8 weights' small products keep "
                                "float32 activations (equal up to float rounding; built once, about 40 s).")] = False,
    packed_gemm: Annotated[bool, typer.Option(
        "--packed-gemm", help="CPU, fp32 weights: a step's linear layers of 3 or more rows multiply through oneDNN "
                              "with prepacked weights (equal up to float rounding; a second copy of the weights)."
    )] = False,
    api_key: Annotated[list[str] | None, typer.Option(
        "--api-key", help="Key clients must send as 'Authorization: Bearer KEY' on /v1 (repeatable; default: "
                          "TOKENSIEVE_API_KEY, comma-separated; none: open).", show_default=False)] = None,
    key_metrics: Annotated[bool, typer.Option("--key-metrics", help="/metrics needs a key too (default: open).")]
    = False,
    drain_timeout: Annotated[float, typer.Option(
        help="On SIGTERM or Ctrl-C: seconds the requests in flight get to finish (new ones get 503); a second "
             "signal exits at once.")] = 30.0,
) -> None:
    """Serve a model over the OpenAI API (completions, chat, streaming), with a KV policy per request."""
    from tokensieve.core.budget import parse_budget
    from tokensieve.core.quant import check_kv_dtype
    from tokensieve.methods import make
    from tokensieve.serve.auth import exposed_warning, keys_from
    from tokensieve.serve.server import ServeConfig
    from tokensieve.weights import check_weights

    if not 0 < budget <= 1:
        raise TokensieveError(f"budget {budget} is outside (0, 1]")
    make(policy, budget=parse_budget(budget))
    check_kv_dtype(kv_dtype)
    check_weights(weights)
    if decode_kernel and device == "cpu":
        from tokensieve.core.kernels import unavailable

        if unavailable():
            raise TokensieveError(unavailable())
    if packed_gemm and weights != "fp32":
        raise TokensieveError(f"--packed-gemm prepacks fp32 weights; --weights {weights} has none to pack")
    if replicas < 1 or max_batch < 1 or prefill_chunk < 1 or max_queue < 0 or max_body_kb < 1:
        raise TokensieveError("replicas, max-batch, prefill-chunk and max-body-kb must be >= 1, max-queue >= 0")
    if drain_timeout < 0:
        raise TokensieveError(f"drain-timeout must be >= 0, got {drain_timeout}")
    if kv_pool_mb is not None and kv_pool_mb <= 0:
        raise TokensieveError(f"kv-pool-mb must be positive, got {kv_pool_mb}")
    keys = keys_from(api_key)
    if key_metrics and not keys:
        raise TokensieveError("--key-metrics needs an API key (--api-key or TOKENSIEVE_API_KEY)")
    config = ServeConfig(model=model, policy=policy, budget=budget, kv_dtype=kv_dtype, max_batch=max_batch,
                         kv_pool_mb=kv_pool_mb,
                         prefill_chunk=prefill_chunk, max_queue=max_queue, max_body_bytes=max_body_kb * 1024,
                         default_max_tokens=max_tokens_default, device=device, weights=weights,
                         decode_kernel=decode_kernel, packed_gemm=packed_gemm, api_keys=keys, metrics_keyed=key_metrics)
    warning = exposed_warning(host, keys)
    if warning:
        err.print(warning, highlight=False)
    if replicas > 1:
        from tokensieve.serve.replicas import serve_replicas

        serve_replicas(config, replicas, host, port)
        return
    import uvicorn

    from tokensieve.serve.drain import GracefulServer
    from tokensieve.serve.server import build_app

    app = build_app(config)
    keyed = f", {len(keys)} API key{'s' if len(keys) > 1 else ''}" if keys else ""
    out.print(f"serving {model} on http://{host}:{port}/v1 (policy {policy} at {budget}{keyed})", highlight=False)
    server = GracefulServer(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                           timeout_graceful_shutdown=5), app.state.drain, drain_timeout,
                            say=lambda line: err.print(line, highlight=False, soft_wrap=True))
    server.run()
    app.state.engine.stop()
    if server.cut_off:
        err.print(f"error: {server.cut_off} requests were still running after the {drain_timeout:g} s drain timeout",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(1)
    out.print("drained: every request in flight was answered", highlight=False)


def register(app: typer.Typer) -> None:
    app.command()(serve)
