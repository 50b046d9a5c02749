"""``rollforge build``: rollouts in, a versioned, validated, reproducible training-data release out."""
