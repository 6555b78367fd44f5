"""Lookalike's command-line tools over a finished index: publish, export, duplicates, demo, and evaluate (quality)."""
