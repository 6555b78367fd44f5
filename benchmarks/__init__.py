"""Lookalike's benchmarks: `python -m benchmarks [NAME ...]` prints figure | ours | baseline | ratio.

Every figure is compared with a baseline measured in the same run, interleaved
round by round, because the machines these run on are shared and noisy.
Each module here that defines `run(args)` is a benchmark named after the module;
it may also define `add_arguments(parser)` for its own size flags.
"""
