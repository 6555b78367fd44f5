"""`python -m app.settings`: print the settings table of docs/web-app.md (a module of its own, so the package is imported once)."""

import sys

from app.settings import markdown_table

sys.stdout.write(markdown_table())
