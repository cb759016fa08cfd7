"""Peak resident memory of this process over a block of code, measured (not estimated)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import psutil
import torch

_CLEAR_REFS = Path("/proc/self/clear_refs")
_STATUS = Path("/proc/self/status")


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _kernel_peak_mb() -> float | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """`with PeakMemory() as peak: ...; peak.rss_mb` — the high-water mark of RSS inside the block.

    On Linux the kernel's own high-water mark (VmHWM) is reset on entry (clear_refs 5) and read on exit, which
    catches even short spikes. Elsewhere a 5 ms sampling thread stands in. On CUDA the device peak is recorded
    too (`device_mb`).
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.rss_mb = 0.0
        self.device_mb: float | None = None
        self._kernel = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        try:
            _CLEAR_REFS.write_text("5")
            self._kernel = _kernel_peak_mb() is not None
        except OSError:
            self._kernel = False
        if not self._kernel:
            self.rss_mb = rss_mb()
            self._thread = threading.Thread(target=self._sample, daemon=True)
            self._thread.start()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.rss_mb = max(self.rss_mb, rss_mb())

    def __exit__(self, *exc) -> None:
        if self._kernel:
            self.rss_mb = _kernel_peak_mb() or rss_mb()
        else:
            self._stop.set()
            self._thread.join()
            self.rss_mb = max(self.rss_mb, rss_mb())
        if self.device.type == "cuda":
            self.device_mb = torch.cuda.max_memory_allocated(self.device) / 2**20


def now() -> float:
    return time.perf_counter()
