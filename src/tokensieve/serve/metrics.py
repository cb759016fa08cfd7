"""Prometheus metrics of one server (its own registry, so several servers can live in one process)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 40, 80, 160, 320)


class ServeMetrics:
    def __init__(self, pool_bytes: int | None) -> None:
        self.registry = registry = CollectorRegistry()
        self.requests = Counter("tokensieve_requests", "Requests answered, by policy and HTTP status",
                                ["policy", "status"], registry=registry)
        self.prompt_tokens = Counter("tokensieve_prompt_tokens", "Prompt tokens prefilled", registry=registry)
        self.generated_tokens = Counter("tokensieve_generated_tokens", "Tokens generated", registry=registry)
        self.batch = Gauge("tokensieve_batch_size", "Sequences in the last engine step", registry=registry)
        self.running = Gauge("tokensieve_running_sequences", "Sequences admitted and not finished",
                             registry=registry)
        self.queue = Gauge("tokensieve_queue_length", "Requests waiting for admission", registry=registry)
        self.kv_bytes = Gauge("tokensieve_kv_bytes_in_use", "KV pool bytes reserved by running sequences",
                              registry=registry)
        self.kv_pool = Gauge("tokensieve_kv_pool_bytes", "KV pool capacity (0 = unlimited)", registry=registry)
        self.kv_pool.set(pool_bytes or 0)
        self.latency = Histogram("tokensieve_request_latency_seconds", "Request latency, by policy", ["policy"],
                                 buckets=LATENCY_BUCKETS, registry=registry)
        self.ttft = Histogram("tokensieve_time_to_first_token_seconds", "Time to first token, by policy",
                              ["policy"], buckets=LATENCY_BUCKETS, registry=registry)

    def step(self, batch: int, running: int, queued: int, kv_bytes: int) -> None:
        self.batch.set(batch)
        self.occupancy(running, queued, kv_bytes)

    def occupancy(self, running: int, queued: int, kv_bytes: int) -> None:
        """Set whenever a sequence arrives, leaves or steps, so an idle server shows its true (empty) pool."""
        self.running.set(running)
        self.queue.set(queued)
        self.kv_bytes.set(kv_bytes)

    def answered(self, policy: str, status: int, usage: dict | None = None) -> None:
        self.requests.labels(policy=policy, status=str(status)).inc()
        if not usage:
            return
        self.prompt_tokens.inc(usage["prompt_tokens"])
        self.generated_tokens.inc(usage["completion_tokens"])
        extra = usage.get("tokensieve", {})
        if extra.get("latency_s") is not None:
            self.latency.labels(policy=policy).observe(extra["latency_s"])
        if extra.get("ttft_s") is not None:
            self.ttft.labels(policy=policy).observe(extra["ttft_s"])

    def render(self) -> bytes:
        return generate_latest(self.registry)
