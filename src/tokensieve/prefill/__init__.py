"""Token skipping inside prefill: fewer tokens go on through the deeper layers (fastv, spts, gemfilter)."""
