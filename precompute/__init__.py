"""Lookalike's offline pipeline: scan → decode → embed → neighbours → index file.

Kept free of imports so that the web app can use `precompute.index_file`
without pulling in torch.
"""
