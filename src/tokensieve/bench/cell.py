"""One cell of the grid (model x task case x method x budget): its key, its code version, and running it.

The runner (local executor) and the Ray executor both import this module; neither imports the other's
internals, so there is no import cycle between them.
"""

from __future__ import annotations

import hashlib
import time
import traceback
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from tokensieve.bench import peers
from tokensieve.bench.store import cell_key
from tokensieve.bench.tasks import case_id
from tokensieve.errors import TokensieveError, is_out_of_memory

ROOT = Path(__file__).resolve().parents[1]
SHARED = ("core", "data", "bench/tasks.py", "bench/prompts.py", "bench/sandbox.py", "bench/cost.py", "bench/metrics.py",
          "generation.py", "models.py")
PEER_FILES = ("bench/peers.py", "bench/peer_worker.py", "peer_venv.py")


def _source(module: str) -> Path:
    """The file of a tokensieve module under ROOT ("tokensieve.kv.snapkv" -> ROOT/kv/snapkv.py)."""
    return ROOT.joinpath(*module.split(".")[1:]).with_suffix(".py")


def _method_files(method: str | None) -> list[Path]:
    """The files that define `method`: its class and every tokensieve base class (pyramid -> snapkv), or the
    peer adapter, or the whole encoder package for an encoder method; all method files when `method` is None."""
    if method is None:
        return sorted((ROOT / "kv").rglob("*.py")) + sorted((ROOT / "sparse").rglob("*.py"))
    if peers.is_peer(method):
        return [ROOT / f for f in PEER_FILES]
    from tokensieve.decode.cells import is_decode_method
    from tokensieve.encoder.cells import encoder_methods

    if is_decode_method(method):  # the decode package, and the policy a decoder runs on
        decoder, _, policy = method.partition("+")
        return sorted((ROOT / "decode").rglob("*.py")) + (_method_files(policy) if policy else [])
    if method in encoder_methods():  # everything that can change an encoder cell's numbers; not its report
        return sorted(p for p in (ROOT / "encoder").rglob("*.py") if p.name != "report.py")
    from tokensieve.core.policy import REGISTRY

    if method not in REGISTRY:
        return []
    files = {_source(c.__module__) for c in REGISTRY[method].__mro__
             if c.__module__.startswith(("tokensieve.kv.", "tokensieve.sparse.", "tokensieve.prefill."))}
    if any("sparse" in f.relative_to(ROOT).parts for f in files):
        files.add(ROOT / "sparse" / "base.py")
    if any("prefill" in f.relative_to(ROOT).parts for f in files):  # the skipping mechanism and its probes
        files.update({ROOT / "prefill" / "skip.py", ROOT / "prefill" / "probe.py"})
    return sorted(files)


@cache
def code_version(method: str | None = None) -> str:
    """Hash of the sources that can change a cell's numbers: the shared engine and the method's own files, so
    adding or editing one policy does not invalidate every other method's cells."""
    digest = hashlib.sha256()
    shared = [p for entry in SHARED for p in
              (sorted((ROOT / entry).rglob("*.py")) if (ROOT / entry).is_dir() else [ROOT / entry])]
    for file in shared + _method_files(method):
        digest.update(file.relative_to(ROOT).as_posix().encode())
        digest.update(file.read_bytes())
    return digest.hexdigest()[:12]


def any_case_id(case: dict) -> str:
    """The id of a decoder case (`bench.tasks.case_id`), of an encoder case or of a decode (speed) case."""
    from tokensieve.decode import cells as decode_cells
    from tokensieve.encoder import cells as encoder_cells

    if decode_cells.is_decode_case(case):
        return decode_cells.case_id(case)
    return encoder_cells.case_id(case) if encoder_cells.is_encoder_case(case) else case_id(case)


@dataclass(frozen=True)
class Cell:
    model: str
    case: tuple  # sorted items of the case dict (hashable)
    method: str
    budget: float
    repeats: int = 1

    @property
    def case_dict(self) -> dict:
        return dict(self.case)

    def inputs(self) -> dict:
        return {"model": self.model, "case": self.case_dict, "method": self.method, "budget": self.budget,
                "repeats": self.repeats}

    def key(self, version: str | None = None) -> str:
        return cell_key(self.inputs(), version or code_version(self.method))


def is_method_failure(err: BaseException) -> bool:
    """A failure of the method on this cell, worth a failed row: a peer that raised or died, a TokensieveError
    (an unsupported setting), or running out of memory. Anything else is a bug in tokensieve."""
    return isinstance(err, peers.PeerFailed | TokensieveError) or is_out_of_memory(err)


_WARM: set[str] = set()


def _warm_up(model: str) -> None:
    """One short untimed generation per process and model, so no cell pays first-call costs."""
    if model in _WARM:
        return
    from tokensieve.data.corpus import haystack
    from tokensieve.generation import cached_load, generate

    _, tok = cached_load(model)
    generate(model, haystack(tok, 128), "What is this about?", "snapkv", 0.5, max_new_tokens=4)
    _WARM.add(model)


def _execute(cell: Cell) -> tuple[float | None, dict]:
    """(quality, metrics) of one cell, in this process (or through its peer worker)."""
    from tokensieve.bench.tasks import run_local
    from tokensieve.decode import cells as decode_cells
    from tokensieve.encoder import cells as encoder_cells

    if encoder_cells.is_encoder_case(cell.case_dict):
        return encoder_cells.run(cell.model, cell.case_dict, cell.method, cell.budget, cell.repeats)
    _warm_up(cell.model)
    if decode_cells.is_decode_case(cell.case_dict):
        return decode_cells.run(cell.model, cell.case_dict, cell.method, cell.budget, cell.repeats)
    if peers.is_peer(cell.method):
        return peers.run_peer(cell.model, cell.case_dict, cell.method, cell.budget, cell.repeats)
    return run_local(cell.model, cell.case_dict, cell.method, cell.budget, cell.repeats)


def run_cell(cell: Cell, version: str | None = None) -> dict:
    """Run one cell and return its row. A method's own failure (`is_method_failure`) is a failed row with the
    error; any other exception is our bug and propagates, so the sweep stops loudly instead of storing it."""
    version = version or code_version(cell.method)
    case = cell.case_dict
    start = time.perf_counter()
    status, quality, metrics = "ok", None, {}
    try:
        quality, metrics = _execute(cell)
    except Exception as err:
        if not is_method_failure(err):
            raise
        status = "failed"
        if isinstance(err, peers.PeerFailed):
            metrics = {"error": str(err)}
        else:
            metrics = {"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()[-1500:]}
    metrics["cell_s"] = round(time.perf_counter() - start, 3)
    return {"key": cell.key(version), "version": version, "model": cell.model, "task": case["task"],
            "case_id": any_case_id(case), "method": cell.method, "budget": cell.budget, "status": status,
            "quality": quality, "metrics": metrics}
