"""Dynamic selection at decode time: nothing is evicted, each query attends only to the tokens chosen for it."""
