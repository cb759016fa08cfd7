"""Sweeps split over the two test tiers (see conftest.py): a few representative cases in the default run, the
rest of the sweep in the slow tier that `.ci/run` also runs."""

from __future__ import annotations

import pytest


def sweep(names, default) -> list:
    """`names` as pytest parameters: those in `default` run in the default tier, the others are marked slow."""
    missing = set(default) - set(names)
    if missing:
        raise ValueError(f"not in the sweep: {sorted(missing)}")
    return [n if n in default else pytest.param(n, marks=pytest.mark.slow) for n in names]
