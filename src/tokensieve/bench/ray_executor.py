"""`--executor ray`: the same cells as Ray tasks on a local cluster or any cluster address.

Rows come back to this process and are written here, so the store and the resume logic are the same as
for the local executor. Workers must have tokensieve (and the packaged model) installed.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from urllib.parse import urlparse

from tokensieve.errors import TokensieveError


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """One clear line for an address nobody answers at (instead of Ray's long retry loop)."""
    if address in ("auto", "local"):
        return
    parsed = urlparse(address if "://" in address else f"tcp://{address}")
    if not parsed.hostname or not parsed.port:
        raise TokensieveError(f"Ray address '{address}' is not host:port or ray://host:port")
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=timeout):
            pass
    except OSError as err:
        raise TokensieveError(f"cannot reach the Ray cluster at {address}: {err.strerror or err}") from None


def run_ray(cells: list, record: Callable[[dict], None], address: str | None = None,
            num_cpus: int | None = None) -> None:
    try:
        import ray
    except ImportError:
        raise TokensieveError("--executor ray needs Ray: pip install 'tokensieve[ray]'") from None
    from tokensieve.bench.cell import code_version, run_cell

    if address:
        check_reachable(address)
    if not ray.is_initialized():
        kwargs = {"address": address} if address and address != "local" else {
            "num_cpus": num_cpus or os.cpu_count(), "include_dashboard": False}
        try:
            ray.init(log_to_driver=False, configure_logging=False, **kwargs)
        except (ConnectionError, RuntimeError) as err:
            raise TokensieveError(f"cannot start or join the Ray cluster: {str(err).splitlines()[0]}") from None
    remote = ray.remote(num_cpus=1, max_retries=0)(run_cell)
    futures = [remote.remote(cell, code_version(cell.method)) for cell in cells]
    while futures:
        ready, futures = ray.wait(futures, num_returns=1)
        record(ray.get(ready[0]))
