"""The neighbour step: each photo's top-k most similar photos, exact or approximate, updated incrementally, after query expansion."""
