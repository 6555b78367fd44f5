"""Who may see a private gallery: the users file, LOOKALIKE_PASSWORD, and the command that makes a password hash.

A users file has one `name:hash` line per person, the hash made by
werkzeug.security (`python -m app.users hash NAME` prints such a line);
blank lines and lines starting with `#` are ignored; a hash whose method
werkzeug cannot compute is refused at start, naming its line. LOOKALIKE_PASSWORD
adds the user `lookalike`. Passwords are never stored, only their hashes.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from functools import lru_cache
from pathlib import Path

from werkzeug.security import check_password_hash, generate_password_hash

SHARED_USER = "lookalike"  # the user LOOKALIKE_PASSWORD signs in
_HASH_METHODS = ("scrypt:", "pbkdf2:")  # what werkzeug.security.check_password_hash verifies


class UsersError(ValueError):
    """The password settings cannot be used; the message says which one and why, never a hash or a password."""


def configured_users(users_file: str | None, password: str | None) -> dict[str, str]:
    """Name → password hash from LOOKALIKE_USERS_FILE and LOOKALIKE_PASSWORD; empty when the gallery is public."""
    users: dict[str, str] = {}
    if users_file is not None:
        users = read_users_file(Path(users_file))
    if password is not None:
        if not password:
            raise UsersError("LOOKALIKE_PASSWORD is set but empty; unset it for a public gallery")
        if SHARED_USER in users:
            raise UsersError(f"LOOKALIKE_PASSWORD and LOOKALIKE_USERS_FILE both define the user {SHARED_USER!r}")
        users[SHARED_USER] = generate_password_hash(password)
    return users


def read_users_file(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise UsersError(f"cannot read LOOKALIKE_USERS_FILE {str(path)!r}: {getattr(err, 'strerror', None) or err}")
    users: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, colon, password_hash = line.partition(":")
        name = name.strip()
        if not colon or not name or not password_hash.startswith(_HASH_METHODS):
            raise UsersError(
                f"LOOKALIKE_USERS_FILE line {number} is not `name:hash` with a werkzeug hash "
                "(make one with `python -m app.users hash NAME`)"
            )
        problem = _method_problem(password_hash.partition("$")[0])
        if problem:
            raise UsersError(
                f"LOOKALIKE_USERS_FILE line {number}: werkzeug cannot check a password against its hash ({problem}; "
                "make a new one with `python -m app.users hash NAME`)"
            )
        if name in users:
            raise UsersError(f"LOOKALIKE_USERS_FILE line {number} repeats the user {name!r}")
        users[name] = password_hash
    if not users:
        raise UsersError(f"LOOKALIKE_USERS_FILE {str(path)!r} names no user")
    return users


@lru_cache(maxsize=16)
def _method_problem(method: str) -> str | None:
    """Why werkzeug cannot compute a hash of `method` (`pbkdf2:md99:1000`, scrypt parameters it refuses), else None.

    Found by computing one at start, once per method, so that such a user's sign-in never fails with a 500.
    """
    try:
        check_password_hash(f"{method}$salt$", "")
    except (ValueError, TypeError, OverflowError, MemoryError) as err:
        return f"method {method!r}: {err}"
    return None


def _read_password() -> str:
    """Asked twice at a terminal; one line from standard input otherwise (for scripts)."""
    if not sys.stdin.isatty():
        return sys.stdin.readline().rstrip("\r\n")
    password = getpass.getpass("Password: ")
    if getpass.getpass("Again: ") != password:
        raise UsersError("the two passwords differ")
    return password


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.users", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("hash", help="read a password and print its hash, as a users-file line if NAME is given")
    make.add_argument("name", nargs="?", help="the user's name (no colon)")
    args = parser.parse_args(argv)
    if args.name is not None and (not args.name.strip() or ":" in args.name):
        parser.error("a user name is not empty and has no colon")
    try:
        password = _read_password()
        if not password:
            raise UsersError("the password is empty")
    except UsersError as err:
        print(f"lookalike: {err}", file=sys.stderr)
        return 1
    password_hash = generate_password_hash(password)
    print(f"{args.name.strip()}:{password_hash}" if args.name is not None else password_hash)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
