"""Gunicorn settings read from the project folder, whatever the command line says.

The app loads the index once, in the master, before the workers fork: they
share its memory, and an index that cannot be loaded stops gunicorn with one
clear line. Without it every worker fails on its own, and gunicorn can print
its own traceback while it shuts down.
"""

preload_app = True
