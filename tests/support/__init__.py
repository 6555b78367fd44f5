"""Helpers shared by the tests and the benchmarks: real servers, photos and indexes made on the spot, the data sets' paths.

Nothing here is collected as a test; benchmarks import it as `tests.support.X` from the repository root.
"""
