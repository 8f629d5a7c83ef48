"""Users, API tokens, browser sessions and ownership, stored in the home's SQLite database.

Why here and not in `web`: the CLI (`deepyard user add`, `deepyard user token`) and the server share them.
Passwords are hashed with scrypt (stdlib `hashlib.scrypt`, n=2**14, r=8, p=1, 16-byte salt); API tokens and
session ids are random 32-byte values of which only the SHA-256 is stored, so a copy of the database grants no
access. Ownership records which user created a dataset, run or job; only its owner or an admin
(`deepyard user add NAME --admin`, `deepyard user admin NAME`) may change it; an object with no owner (made from the
CLI or before users existed) may be changed by any signed-in user, as in DIGITS.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from deepyard import db
from deepyard.errors import InvalidValueError, NotFoundError

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9._-]{0,63}$")
MIN_PASSWORD = 8
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**14, 8, 1
SESSION_DAYS = 14
TOKEN_PREFIX = "dy_"


@dataclass(frozen=True)
class User:
    id: int
    name: str
    admin: bool = False  # may change what other users made


def _user(row: sqlite3.Row) -> User:
    return User(row["id"], row["name"], bool(row["admin"]))


def hash_password(password: str) -> str:
    """`scrypt$n$r$p$salt$hash` (hex): the parameters travel with the hash, so they can be raised later."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32)
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${salt.hex()}${digest.hex()}"


def check_password(password: str, stored: str) -> bool:
    try:
        kind, n, r, p, salt, digest = stored.split("$")
        if kind != "scrypt":
            return False
        got = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p), dklen=32)
    except ValueError:
        return False
    return hmac.compare_digest(got.hex(), digest)


def _sha(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_user(conn: sqlite3.Connection, name: str, password: str, admin: bool = False) -> User:
    """Add a user; names are `[a-z][a-z0-9._-]*` (as DIGITS'), passwords at least 8 characters."""
    if not NAME_PATTERN.match(name):
        raise InvalidValueError(
            f"user name {name!r} is not valid; use a lower-case letter then letters, digits, '.', '_' or '-'"
        )
    if len(password) < MIN_PASSWORD:
        raise InvalidValueError(f"password too short ({len(password)} characters); use at least {MIN_PASSWORD}")
    if find_user(conn, name) is not None:
        raise InvalidValueError(f"user {name!r} already exists")
    cur = conn.execute(
        "INSERT INTO users (name, password, created, admin) VALUES (?, ?, ?, ?)",
        (name, hash_password(password), db.now(), int(admin)),
    )
    return User(int(cur.lastrowid or 0), name, admin)


def set_admin(conn: sqlite3.Connection, name: str, admin: bool) -> User:
    """Make user `name` an admin (may change what others made) or not."""
    user = get_user(conn, name)
    conn.execute("UPDATE users SET admin = ? WHERE id = ?", (int(admin), user.id))
    return User(user.id, user.name, admin)


def find_user(conn: sqlite3.Connection, name: str) -> User | None:
    row = conn.execute("SELECT id, name, admin FROM users WHERE name = ?", (name,)).fetchone()
    return _user(row) if row else None


def get_user(conn: sqlite3.Connection, name: str) -> User:
    user = find_user(conn, name)
    if user is None:
        names = [u.name for u in list_users(conn)]
        raise NotFoundError(f"no user {name!r}; existing: {', '.join(names) or 'none'}")
    return user


def list_users(conn: sqlite3.Connection) -> list[User]:
    return [_user(r) for r in conn.execute("SELECT id, name, admin FROM users ORDER BY name")]


def has_users(conn: sqlite3.Connection) -> bool:
    return conn.execute("SELECT 1 FROM users LIMIT 1").fetchone() is not None


def delete_user(conn: sqlite3.Connection, name: str) -> None:
    conn.execute("DELETE FROM users WHERE id = ?", (get_user(conn, name).id,))


def authenticate(conn: sqlite3.Connection, name: str, password: str) -> User | None:
    """The user when `password` is theirs, else None (the same work is done for unknown names)."""
    row = conn.execute("SELECT id, name, admin, password FROM users WHERE name = ?", (name,)).fetchone()
    stored = row["password"] if row else hash_password("not a user")
    ok = check_password(password, stored)
    return _user(row) if row and ok else None


def create_token(conn: sqlite3.Connection, user: User, label: str = "") -> str:
    """A new API token for `user`; shown once, only its hash is kept."""
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    conn.execute("INSERT INTO tokens VALUES (?, ?, ?, ?)", (_sha(token), user.id, label, db.now()))
    return token


def user_for_token(conn: sqlite3.Connection, token: str) -> User | None:
    row = conn.execute(
        "SELECT users.id, users.name, users.admin FROM tokens JOIN users ON users.id = tokens.user_id "
        "WHERE tokens.hash = ?",
        (_sha(token),),
    ).fetchone()
    return _user(row) if row else None


def create_session(conn: sqlite3.Connection, user: User) -> str:
    session = secrets.token_urlsafe(32)
    expires = (datetime.now(timezone.utc) + timedelta(days=SESSION_DAYS)).isoformat(timespec="seconds")
    conn.execute("INSERT INTO sessions VALUES (?, ?, ?)", (_sha(session), user.id, expires))
    return session


def user_for_session(conn: sqlite3.Connection, session: str) -> User | None:
    row = conn.execute(
        "SELECT users.id, users.name, users.admin, sessions.expires FROM sessions "
        "JOIN users ON users.id = sessions.user_id WHERE sessions.hash = ?",
        (_sha(session),),
    ).fetchone()
    if row is None or row["expires"] < datetime.now(timezone.utc).isoformat(timespec="seconds"):
        return None
    return _user(row)


def end_session(conn: sqlite3.Connection, session: str) -> None:
    conn.execute("DELETE FROM sessions WHERE hash = ?", (_sha(session),))


def set_owner(conn: sqlite3.Connection, kind: str, ref: str, user: User | None) -> None:
    if user is not None:
        conn.execute("INSERT OR REPLACE INTO owners VALUES (?, ?, ?)", (kind, ref, user.id))


def claim(conn: sqlite3.Connection, kind: str, ref: str, name: str) -> None:
    """Record user `name` as the creator of `ref`, unless it has an owner already (or the user is gone)."""
    conn.execute("INSERT OR IGNORE INTO owners SELECT ?, ?, id FROM users WHERE name = ?", (kind, ref, name))


def forget(conn: sqlite3.Connection, kind: str, ref: str) -> None:
    """Drop the ownership record of a deleted dataset or run."""
    conn.execute("DELETE FROM owners WHERE kind = ? AND ref = ?", (kind, ref))


CREATING_JOB = {"dataset": "dataset", "run": "train"}  # the job kind that makes each kind of thing


def owner_of(conn: sqlite3.Connection, kind: str, ref: str) -> str | None:
    """Who created `ref`: its ownership record, else the submitter of the job that made it (things made before
    ownership was recorded for jobs' targets)."""
    row = conn.execute(
        "SELECT users.name FROM owners JOIN users ON users.id = owners.user_id WHERE kind = ? AND ref = ?",
        (kind, ref),
    ).fetchone()
    if row is None and kind in CREATING_JOB:
        row = conn.execute(
            "SELECT owner AS name FROM jobs WHERE kind = ? AND target = ? AND owner IS NOT NULL ORDER BY seq LIMIT 1",
            (CREATING_JOB[kind], ref),
        ).fetchone()
    return str(row["name"]) if row else None


def owners_of(conn: sqlite3.Connection, kind: str) -> dict[str, str]:
    """`owner_of` for every `ref` of `kind` at once (two queries, for listings): ref -> owner's name."""
    found: dict[str, str] = {}
    if kind in CREATING_JOB:  # the submitters first; ownership records win over them
        for row in conn.execute(
            "SELECT target, owner FROM jobs WHERE kind = ? AND target IS NOT NULL AND owner IS NOT NULL "
            "ORDER BY seq DESC",
            (CREATING_JOB[kind],),
        ):
            found[row["target"]] = row["owner"]  # descending: the first job's submitter is written last
    for row in conn.execute(
        "SELECT ref, users.name FROM owners JOIN users ON users.id = owners.user_id WHERE kind = ?", (kind,)
    ):
        found[row["ref"]] = row["name"]
    return found


def may_change(conn: sqlite3.Connection, kind: str, ref: str, user: User | None) -> bool:
    """Only the creator (or an admin) may delete, abort or write into what they made; unowned things are open to
    any user."""
    owner = owner_of(conn, kind, ref)
    return owner is None or (user is not None and (user.admin or owner == user.name))
