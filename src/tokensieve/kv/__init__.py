"""KV-cache policies: one file per paper, each only the scorer that is new in it."""
