"""Encoder token reduction (stage: encoder layers): merge or prune rows between the layers of a BERT-family or
ViT encoder, training-free. `merge(model, "tome", keep=0.5)` around a transformers model or a
SentenceTransformer; `tokensieve encode` on the command line; `tokensieve bench --suite encoder` measures."""

from __future__ import annotations

from tokensieve.encoder.base import EncoderMethod
from tokensieve.encoder.methods import METHODS, make
from tokensieve.encoder.run import EncoderRun, merge
from tokensieve.encoder.schedule import Schedule

__all__ = ["METHODS", "EncoderMethod", "EncoderRun", "Schedule", "make", "merge"]
