"""The decode stage: lossless speculative decoding with training-free drafters (docs/DECODE.md)."""
