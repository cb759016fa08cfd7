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

        torch.set_num_threads(threads)
        return build_app(config, replica=f"pid-{os.getpid()}")

    return build


def serve_replicas(config: ServeConfig, replicas: int, host: str, port: int, ready=None) -> None:
    """Run until interrupted (or until `ready` — an Event — is set and then cleared by the caller)."""
    import ray
    from ray import serve

    threads = max(1, (os.cpu_count() or 1) // replicas)
    ray.init(include_dashboard=False, log_to_driver=False, configure_logging=False,
             runtime_env={"env_vars": {"OMP_NUM_THREADS": str(threads), "HF_HUB_OFFLINE": "1"}})
    serve.start(http_options={"host": host, "port": port})
    deployment = serve.deployment(serve.ingress(_builder(config, threads))(), name="tokensieve",
                                  num_replicas=replicas, max_ongoing_requests=config.max_batch + config.max_queue,
                                  ray_actor_options={"num_cpus": 0})
    serve.run(deployment.bind(), name="tokensieve", route_prefix="/", blocking=False)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"serving {config.model} on http://{host}:{port} with {replicas} Ray Serve replicas", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        serve.shutdown()
        ray.shutdown()
