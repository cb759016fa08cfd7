"""The overload probe of issue 32: 40 concurrent clients with 1,200-token prompts into a 150 MiB pool with
`--max-queue 4`, through the official `openai` client over loopback. Prints how many were answered (200) and
refused (429), and how long the slowest of each took:

    .venv/bin/python scripts/overload_probe.py
"""

from __future__ import annotations

import asyncio
import time

import openai

from tokensieve.data.corpus import haystack
from tokensieve.models import cached_load
from tokensieve.serve.server import ServeConfig, ServerThread, build_app

MODEL = "smollm2-135m"


async def one(client, prompt: str) -> tuple[int, float]:
    start = time.monotonic()
    try:
        await client.completions.create(model=MODEL, prompt=prompt, max_tokens=6, temperature=0)
        return 200, time.monotonic() - start
    except openai.APIStatusError as error:
        return error.status_code, time.monotonic() - start


async def storm(url: str, prompts: list[str]) -> list[tuple[int, float]]:
    async with openai.AsyncOpenAI(base_url=url + "/v1", api_key="probe", max_retries=0, timeout=300) as client:
        return await asyncio.gather(*(one(client, p) for p in prompts))


def main() -> None:
    tokenizer = cached_load(MODEL)[1]
    app = build_app(ServeConfig(model=MODEL, max_batch=16, kv_pool_mb=150, max_queue=4))
    prompts = [haystack(tokenizer, 1200, offset=97 * i) for i in range(40)]
    with ServerThread(app) as server:
        start = time.monotonic()
        results = asyncio.run(storm(server.url, prompts))
        total = time.monotonic() - start
    app.state.engine.stop()
    answered = [s for status, s in results if status == 200]
    refused = [s for status, s in results if status == 429]
    print(f"200: {len(answered)} (slowest {max(answered):.1f} s), 429: {len(refused)} (slowest "
          f"{max(refused):.2f} s), other: {len(results) - len(answered) - len(refused)}, all done in {total:.1f} s")


if __name__ == "__main__":
    main()
