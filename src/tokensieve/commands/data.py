"""Test material as files: ruler-case writes one RULER-style case, to feed `tokensieve generate` by hand."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from tokensieve.commands.common import Model, guarded, out


@guarded
def ruler_case(
    out_file: Annotated[Path, typer.Option("--out", "-o", help="Where the context text goes.")],
    task: Annotated[str, typer.Option(help="A RULER-style task, e.g. niah_single_number, vt, qa.")]
    = "niah_single_number",
    tokens: Annotated[int, typer.Option(help="Prompt length in the model's tokens (context + question).")] = 4096,
    seed: Annotated[int, typer.Option(help="Every case comes from its seed.")] = 0,
    haystack: Annotated[str, typer.Option(help="essays or stdlib.")] = "essays",
    model: Model = "smollm2-135m",
) -> None:
    """Write a RULER-style case's context to a file and print its question, answer prefix and expected answers
    as JSON, ready for `tokensieve generate -c FILE -q QUESTION --answer-prefix PREFIX`."""
    from transformers import AutoTokenizer

    from tokensieve import models
    from tokensieve.data.ruler import ruler_case as make_case

    tokenizer = AutoTokenizer.from_pretrained(models.resolve(model))
    case = make_case(tokenizer, task, tokens, seed, haystack)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=out_file.parent, delete=False) as f:
        f.write(case.context)
    os.replace(f.name, out_file)  # nothing half-written
    out.print_json(json.dumps({"context_file": str(out_file), "question": case.question,
                               "answer_prefix": case.answer_prefix, "expected": list(case.expected),
                               "metric": case.metric, "tokens": tokens}))


def register(app: typer.Typer) -> None:
    app.command("ruler-case")(ruler_case)
