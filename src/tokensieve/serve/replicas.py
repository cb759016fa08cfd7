"""Scale-out: N engine replicas behind Ray Serve's HTTP proxy, each with its own model copy, engine and KV pool.

Ray Serve routes each request to a replica with the fewest requests in flight; a replica's /health names it
(`replica`), so a client can see which one answered. Each replica runs the same FastAPI app as `tokensieve serve`.
"""

from __future__ import annotations

import os
import signal
import threading

from tokensieve.serve.server import ServeConfig, build_app


def _builder(config: ServeConfig, threads: int):
    def build():
        import torch

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        torch.set_num_threads(threads)
        return build_app(config, replica=f"pid-{os.getpid()}")

    return build


def serve_replicas(config: ServeConfig, replicas: int, host: str, port: int, ready=None) -> None:
    """Run until interrupted (or until `ready` — an Event — is set and then cleared by the caller)."""
    import ray
    from ray import serve

    threads = max(1, (os.cpu_count() or 1) // replicas)
    for name in ("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S"):
        os.environ.setdefault(name, "120")  # a loaded small machine starts the proxy slowly (5 s by default)
    os.environ.setdefault("RAY_worker_niceness", "0")  # replicas serve requests: not background work (Ray: 15)
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False)
    serve.start(http_options={"host": host, "port": port})
    deployment = serve.deployment(serve.ingress(_builder(config, threads))(), name="tokensieve",
                                  num_replicas=replicas, max_ongoing_requests=config.max_batch + config.max_queue,
                                  ray_actor_options={"num_cpus": 0}, health_check_timeout_s=120)
    serve.run(deployment.bind(), name="tokensieve", route_prefix="/", blocking=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"serving {config.model} on http://{host}:{port} with {replicas} Ray Serve replicas", flush=True)
    try:
        while not stop.wait(0.5):  # a timed wait lets the signal handler run
            pass
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
