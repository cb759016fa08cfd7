"""PeakMemory: the peak RSS of a block, without resetting the process-wide high-water mark others rely on."""

from __future__ import annotations

import mmap
import time

import pytest

from tokensieve.core.memory import PeakMemory, _kernel_peak_mb, rss_mb

MB = 2**20
pytestmark = pytest.mark.skipif(_kernel_peak_mb() is None, reason="no VmHWM in /proc/self/status (not Linux)")


def _spike(mb: int, hold_s: float = 0.0) -> None:
    """Raise RSS by `mb` for `hold_s` seconds (pages really written), then give it back. A fresh anonymous mapping,
    not a Python object: in a process that has loaded and freed models, malloc may hand back heap pages that are
    already resident, and RSS would not move."""
    with mmap.mmap(-1, mb * MB) as block:
        for offset in range(0, mb * MB, mmap.PAGESIZE):
            block[offset] = 1
        time.sleep(hold_s)


def test_entering_and_leaving_never_lowers_the_process_high_water_mark():
    _spike(300)  # a process peak well above what stays resident
    before = _kernel_peak_mb()
    assert before > rss_mb() + 200
    with PeakMemory() as peak:
        during = _kernel_peak_mb()
        _spike(20, 0.05)
    assert during >= before and _kernel_peak_mb() >= before
    # the block stayed below the old peak, so its own peak is measured, not the process's
    assert rss_mb() - 5 < peak.rss_mb < before - 100


def test_a_block_below_an_earlier_peak_still_sees_its_own_spike():
    _spike(300)
    with PeakMemory() as quiet:
        time.sleep(0.05)
    with PeakMemory() as spiky:
        _spike(120, 0.1)  # held over many 5 ms samples
    assert spiky.rss_mb > quiet.rss_mb + 100


def test_a_block_that_sets_a_new_process_peak_reports_it_exactly():
    with PeakMemory() as peak:
        _spike(int(_kernel_peak_mb() - rss_mb()) + 150)  # a brief spike, past the process's peak so far
    assert peak.rss_mb == _kernel_peak_mb()
