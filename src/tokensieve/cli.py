"""The `tokensieve` command line: builds the app from `tokensieve.commands`. Bad input -> one line on stderr, exit 2."""

from __future__ import annotations

import typer

from tokensieve.commands import bench, data, diagnose, encode, generate, models, prompt, serve, speed, vllm
from tokensieve.commands.common import Device, Model, err, fail, guarded, out, read_text

__all__ = ["Device", "Model", "app", "err", "fail", "guarded", "main", "out", "read_text"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Training-free token reduction for transformer inference, measured on real models.")
# Sub-apps list after the commands, in this order; commands list in registration order.
app.add_typer(models.models_app, name="models")
app.add_typer(bench.peers_app, name="peers")
app.add_typer(speed.speed_app, name="speed")
app.add_typer(vllm.vllm_app, name="vllm")
for module in (generate, serve, bench, models, data, diagnose, prompt, encode):
    module.register(app)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
