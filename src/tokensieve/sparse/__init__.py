"""Dynamic selection at decode time: nothing is evicted, each query attends only to the tokens chosen for it."""

from tokensieve.sparse import (  # noqa: F401  (importing registers them)
    cluster,
    fasa,
    hisa,
    indexer,
    rectified,
    tokenselect,
)
