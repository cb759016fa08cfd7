"""Peak resident memory of this process over a block of code, measured (not estimated)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import psutil
import torch

_STATUS = Path("/proc/self/status")
_STATM = "/proc/self/statm"
_PAGE_MB = os.sysconf("SC_PAGE_SIZE") / 2**20 if hasattr(os, "sysconf") else 0.0
SAMPLE_S = 0.005


def rss_mb() -> float:
    return psutil.Process().memory_info().rss / 2**20


def _fast_rss_mb() -> float:
    """RSS from /proc/self/statm (one small read, cheap enough for a 5 ms sampler); psutil elsewhere."""
    try:
        with open(_STATM, "rb") as f:
            return int(f.read().split()[1]) * _PAGE_MB
    except (OSError, IndexError, ValueError):
        return rss_mb()


def _kernel_peak_mb() -> float | None:
    """The kernel's high-water mark of this process's RSS (VmHWM), or None where /proc has none."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


class PeakMemory:
    """`with PeakMemory() as peak: ...; peak.rss_mb` — the high-water mark of RSS inside the block.

    The kernel's process-wide high-water mark (VmHWM) is read on entry and on exit, never reset: other
    measurements in the process rely on it, and blocks may nest. If it rose, the block set a new process peak,
    and VmHWM at exit is that peak exactly (even a spike too short for any sampler). If not, the block stayed
    below an earlier peak, and the max of a 5 ms sampling thread and the RSS at exit stands in (as it does where
    there is no VmHWM). On CUDA the device peak is recorded too (`device_mb`).
    """

    def __init__(self, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.rss_mb = 0.0
        self.device_mb: float | None = None
        self._hwm_entry: float | None = None
        self._sampled = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> PeakMemory:
        self._hwm_entry = _kernel_peak_mb()
        self._sampled = _fast_rss_mb()
        self._stop.clear()
        self._thread = threading.Thread(target=self._sample, name="PeakMemory", daemon=True)
        self._thread.start()
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        return self

    def _sample(self) -> None:
        while not self._stop.wait(SAMPLE_S):
            self._sampled = max(self._sampled, _fast_rss_mb())

    def __exit__(self, *exc) -> None:
        hwm_exit = _kernel_peak_mb()
        self._stop.set()
        self._thread.join()
        sampled = max(self._sampled, _fast_rss_mb())
        if self._hwm_entry is not None and hwm_exit is not None and hwm_exit > self._hwm_entry:
            self.rss_mb = hwm_exit  # a new process peak, set inside this block
        else:
            self.rss_mb = sampled
        if self.device.type == "cuda":
            self.device_mb = torch.cuda.max_memory_allocated(self.device) / 2**20


def now() -> float:
    return time.perf_counter()


def device_sync(device: torch.device) -> None:
    """Wait for the device's queued work, so that a wall clock read next measures it (a no-op on CPU)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
