"""Gunicorn settings read from the project folder, whatever the command line says.

The app loads the index once, in the master, before the workers fork: they
share its memory, and an index that cannot be loaded stops gunicorn with one
clear line. Without it every worker fails on its own, and gunicorn can print
its own traceback while it shuts down.

Once it listens, gunicorn logs one line if the gallery has no password and
its bind reaches beyond this machine (the Procfile's 0.0.0.0:$PORT does).
"""

preload_app = True


def when_ready(server) -> None:
    from app.access import public_bind_warning
    from app.settings import read_settings

    warning = public_bind_warning(list(server.cfg.bind), read_settings())
    if warning:
        server.log.warning(warning)
