"""Lookalike's offline pipeline: scan → decode → embed → neighbours → index file.

What the web app shares with it (the index format, ranking, duplicate groups,
locations, folders, storage) is in `core/`, which needs no torch; the tools
that work on a finished index (publish, export, duplicates, demo, evaluate)
are in `tools/`. The web app imports only `precompute.query`, the search seam.
"""
