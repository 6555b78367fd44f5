"""What the web app and the pipeline both run: the index format, ranking, duplicate groups, locations, folders, storage.

Torch-free: the web app imports it on every request path.
"""
