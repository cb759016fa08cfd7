"""What every command shares: the consoles, the `guarded` decorator, reading input, shared option types."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from tokensieve.errors import TokensieveError, is_out_of_memory, out_of_memory

out = Console(width=None if sys.stdout.isatty() else 160)
err = Console(stderr=True)


def fail(message: str, code: int = 2) -> None:
    err.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def guarded(fn):
    """Turn every TokensieveError (and a missing file) into one clear line and its exit code: 2 for bad input,
    1 for a ResourceError. Running out of memory anywhere is one `error: out of memory …` line and exit 1;
    any other exception is a bug and keeps its traceback."""
    import functools

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except TokensieveError as e:
            fail(str(e), e.exit_code)
        except (FileNotFoundError, IsADirectoryError, UnicodeDecodeError) as e:
            fail(f"cannot read input: {e}")
        except (MemoryError, RuntimeError) as e:
            if not is_out_of_memory(e):
                raise
            fail(str(out_of_memory(e, f"in `{fn.__name__.replace('_', ' ')}`")), 1)

    return wrapper


def read_text(path: Path | None, what: str) -> str:
    data = sys.stdin.buffer.read() if path is None or str(path) == "-" else Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise TokensieveError(f"{what} is not valid UTF-8 text") from None


Model = Annotated[str, typer.Option("--model", "-m", help="Zoo name (see `models list`) or a local HF directory.")]
Device = Annotated[str, typer.Option(help="torch device: cpu, cuda, cuda:1, mps …")]
Weights = Annotated[str, typer.Option(help="Weight precision: fp32, bf16, or int8 (weight-only, one scale per "
                                            "output channel; activations bf16 in the product).")]


def whole_numbers(text: str) -> list[int]:
    """'1,4,8' -> [1, 4, 8]: a comma-separated list of whole numbers >= 1, else one clear error."""
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise TokensieveError(f"'{text}' is not a comma-separated list of whole numbers") from None
    if not values or min(values) < 1:
        raise TokensieveError(f"'{text}': give whole numbers >= 1")
    return values

