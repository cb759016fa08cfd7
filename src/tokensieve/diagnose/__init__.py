"""Diagnostics: attention sinks (primary/secondary), massive activations, active/dormant heads."""

from tokensieve.diagnose.report import Report, Settings, compare, inspect_text
from tokensieve.kv.auto import load_report  # `auto` reads the reports diagnose writes

__all__ = ["Report", "Settings", "compare", "inspect_text", "load_report"]
