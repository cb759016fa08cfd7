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

from tokensieve.bench.peers import hf_cache, kvpress
from tokensieve.bench.store import cell_key
from tokensieve.bench.version_aliases import ALIASES
from tokensieve.errors import TokensieveError, is_out_of_memory

ROOT = Path(__file__).resolve().parents[1]
# the modules every decoder cell runs, by name (a package stands for all its modules)
SHARED = ("tokensieve.core", "tokensieve.data", "tokensieve.bench.tasks", "tokensieve.bench.prompts",
          "tokensieve.bench.storage", "tokensieve.bench.sandbox", "tokensieve.bench.cost", "tokensieve.bench.metrics",
          "tokensieve.run", "tokensieve.models")
PEER_MODULES = ("tokensieve.bench.peers.kvpress", "tokensieve.bench.peers.workers.kvpress_worker",
                "tokensieve.bench.peers.venv")
METHOD_PACKAGES = ("tokensieve.kv.", "tokensieve.sparse.", "tokensieve.prefill.")


def module_files(name: str) -> list[Path]:
    """The source files of a tokensieve module, or of every module of a package, found under ROOT by name; a
    name that no longer exists is an error, never a silently smaller hash."""
    relative = Path(*name.split(".")[1:])
    if (ROOT / relative).is_dir():
        return sorted((ROOT / relative).rglob("*.py"))
    file = (ROOT / relative).with_suffix(".py")
    if not file.is_file():
        raise TokensieveError(f"code version: module {name} is not under {ROOT}")
    return [file]


def module_name(file: Path) -> str:
    parts = file.relative_to(ROOT).with_suffix("").parts
    return ".".join(("tokensieve", *parts[: -1 if parts[-1] == "__init__" else None]))


def method_modules(method: str | None) -> list[str]:
    """The modules that define `method`: its class and every tokensieve base class (pyramid -> snapkv), or the
    peer adapter, or the whole encoder package for an encoder method; all KV and sparse modules for None."""
    if method is None:
        return ["tokensieve.kv", "tokensieve.sparse"]
    if kvpress.is_peer(method):
        return list(PEER_MODULES)
    if hf_cache.is_peer(method):
        return ["tokensieve.bench.peers.hf_cache"]
    from tokensieve.bench.decode_cells import is_decode_method
    from tokensieve.bench.encoder_cells import encoder_methods

    if is_decode_method(method):  # the decode package, and the policy a decoder runs on
        decoder, _, policy = method.partition("+")
        return ["tokensieve.decode", "tokensieve.bench.decode_cells", "tokensieve.bench.peers.hf_decoding",
                *(method_modules(policy) if policy else [])]
    if method in encoder_methods():  # everything that can change an encoder cell's numbers
        return ["tokensieve.encoder", "tokensieve.bench.encoder_cells"]
    from tokensieve.bench.storage import split_storage, split_weights
    from tokensieve.methods import REGISTRY

    if split_weights(method)[1] != "fp32":  # the weights' code, for their cells only
        return sorted({"tokensieve.weights", *method_modules(split_weights(method)[0])})
    method = split_storage(method)[0]  # a storage precision's code is shared (tokensieve.core)
    if method not in REGISTRY:
        return []
    cls = REGISTRY[method]
    names = {c.__module__ for part in (cls, *cls.stacks) for c in part.__mro__
             if c.__module__.startswith(METHOD_PACKAGES)}
    if any(n.startswith("tokensieve.sparse.") for n in names):
        names.add("tokensieve.sparse.base")
    if any(n.startswith("tokensieve.prefill.") for n in names):  # the skipping mechanism and its probes
        names.update({"tokensieve.prefill.skip", "tokensieve.prefill.probe"})
    return sorted(names)


def _method_files(method: str | None) -> list[Path]:
    return sorted({f for name in method_modules(method) for f in module_files(name)})


def raw_version(method: str | None = None) -> str:
    """Hash of the sources that can change a cell's numbers, each under its module name: the shared engine and
    the method's own modules, so adding or editing one policy does not invalidate every other method's cells."""
    digest = hashlib.sha256()
    shared = sorted({f for name in SHARED for f in module_files(name)})
    for file in shared + _method_files(method):
        digest.update(module_name(file).encode())
        digest.update(file.read_bytes())
    digest.update(storage_salt(method))
    return digest.hexdigest()[:12]


def storage_salt(method: str | None) -> bytes:
    """The storage precision a method string names ("quest@int4": int4), hashed into its version: a storage's code
    is shared (tokensieve.core), so a change that alters one policy over one store (Quest's code pages) can re-run
    those cells alone, the policy's other stores keeping theirs through an alias. Nothing for fp or a peer."""
    if method is None or "@" not in method or kvpress.is_peer(method) or hf_cache.is_peer(method):
        return b""
    return ("kv_dtype=" + method.split("@", 1)[1].split("~", 1)[0]).encode()


@cache
def code_version(method: str | None = None) -> str:
    """The version a cell's key carries: `raw_version`, or the version it had before a refactor that changed
    sources but no behaviour (`bench.version_aliases`), so stored cells stay valid."""
    raw = raw_version(method)
    return ALIASES.get(raw, raw)


def any_case_id(case: dict) -> str:
    """The id of any grid case (a decoder task's, an encoder's or a decode case's), by its kind."""
    from tokensieve.bench.kinds import kind_of

    return kind_of(case).case_id(case)


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
    return isinstance(err, kvpress.PeerFailed | TokensieveError) or is_out_of_memory(err)


_WARM: set[str] = set()


def _warm_up(model: str) -> None:
    """One short untimed generation per process and model, so no cell pays first-call costs."""
    if model in _WARM:
        return
    from tokensieve.data.corpus import haystack
    from tokensieve.models import cached_load
    from tokensieve.run import generate

    _, tok = cached_load(model)
    generate(model, haystack(tok, 128), "What is this about?", "snapkv", 0.5, max_new_tokens=4)
    _WARM.add(model)


def _execute(cell: Cell) -> tuple[float | None, dict]:
    """(quality, metrics) of one cell, in this process (or through its peer worker), as its kind runs it."""
    from tokensieve.bench.kinds import kind_of

    kind = kind_of(cell.case_dict)
    if kind.warm_up:
        _warm_up(cell.model)
    return kind.run(cell.model, cell.case_dict, cell.method, cell.budget, cell.repeats)


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
        if isinstance(err, kvpress.PeerFailed):
            metrics = {"error": str(err)}
        else:
            metrics = {"error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()[-1500:]}
    metrics["cell_s"] = round(time.perf_counter() - start, 3)
    return {"key": cell.key(version), "version": version, "model": cell.model, "task": case["task"],
            "case_id": any_case_id(case), "method": cell.method, "budget": cell.budget, "status": status,
            "quality": quality, "metrics": metrics}
