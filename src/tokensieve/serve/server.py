"""Building and running a server: one engine behind uvicorn, or (`serve_replicas`) N engines behind Ray Serve."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import uvicorn

from tokensieve.models import cached_load
from tokensieve.serve.app import create_app
from tokensieve.serve.engine import Engine
from tokensieve.serve.metrics import ServeMetrics


@dataclass
class ServeConfig:
    model: str = "smollm2-135m"
    policy: str = "full"
    budget: float = 1.0
    kv_dtype: str = "fp"
    max_batch: int = 16
    kv_pool_mb: float | None = None
    prefill_chunk: int = 128
    max_queue: int = 64
    max_body_bytes: int = 1 << 20
    default_max_tokens: int = 256
    device: str = "cpu"
    weights: str = "fp32"
    decode_kernel: bool = False  # dense one-token decode attention through tokensieve's CPU kernel
    packed_gemm: bool = False  # a step's linears of 3+ rows through oneDNN with prepacked weights (CPU, fp32)
    api_keys: tuple[str, ...] = field(default=(), repr=False)  # never printed
    metrics_keyed: bool = False

    @property
    def pool_bytes(self) -> int | None:
        return None if self.kv_pool_mb is None else int(self.kv_pool_mb * 2**20)


def build_engine(config: ServeConfig) -> Engine:
    model, tokenizer = cached_load(config.model, config.device, config.weights)
    metrics = ServeMetrics(config.pool_bytes)
    return Engine(model, tokenizer, policy=config.policy, budget=config.budget, max_batch=config.max_batch,
                  kv_pool_bytes=config.pool_bytes, prefill_chunk=config.prefill_chunk,
                  max_queue=config.max_queue, metrics=metrics, name=config.model, kv_dtype=config.kv_dtype,
                  decode_kernel=config.decode_kernel, packed_gemm=config.packed_gemm)


def build_app(config: ServeConfig, replica: str | None = None):
    engine = build_engine(config).start()
    app = create_app(engine, config.model, max_body_bytes=config.max_body_bytes,
                     default_max_tokens=config.default_max_tokens, replica=replica, api_keys=config.api_keys,
                     metrics_keyed=config.metrics_keyed)
    app.state.engine = engine
    return app


class ServerThread:
    """A uvicorn server on loopback in a background thread (tests, `bench serve`): `with ServerThread(app) as s`."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning",
                                                    timeout_graceful_shutdown=2))
        self.thread = threading.Thread(target=self.server.run, name="uvicorn", daemon=True)

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        return self

    @property
    def url(self) -> str:
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
