"""`deepyard serve` (the web app) and `deepyard user add / list / delete / token`.

The server binds 127.0.0.1 unless told otherwise; any other address is refused until a user exists. Passwords
are read from a hidden prompt, or from stdin with `--password-stdin` (scripts), never from the command line.
"""

from __future__ import annotations

import sys

import typer

from deepyard import db, dbadmin, users
from deepyard.cli.common import console, print_json
from deepyard.errors import InvalidValueError

user_app = typer.Typer(help="Users of the web app and their API tokens.", no_args_is_help=True)


def serve_command(
    ctx: typer.Context,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on (others need a user first)."),
    port: int = typer.Option(5000, "--port", min=1, max=65535, help="TCP port."),
    https: bool = typer.Option(False, "--https", help="Served behind an https proxy: mark cookies Secure."),
    cpu_slots: int = typer.Option(1, "--cpu-slots", min=0, help="Jobs that may run on the CPU at once."),
    gpus: str | None = typer.Option(None, "--gpus", help="GPU indices for jobs, e.g. 0,1 (default: all)."),
    jobs: bool = typer.Option(True, "--jobs/--no-jobs", help="Run the job scheduler (off: `deepyard jobs work`)."),
) -> None:
    """Serve the web app and the REST API (docs at /docs) until Ctrl-C; jobs run in child processes."""
    from deepyard.web import serve
    from deepyard.web.app import JobOptions
    from deepyard.web.security import check_bind

    dbadmin.ensure_healthy(ctx.obj)  # a damaged database: one line and exit code 2, the file left as it is
    check_bind(ctx.obj, host)
    shown = f"[{host}]" if ":" in host else host
    console.print(f"Deepyard is serving {ctx.obj.home} at [bold]http://{shown}:{port}/[/] (Ctrl-C stops it)")
    devices = None if gpus is None else [int(g) for g in gpus.split(",") if g.strip()]
    serve(ctx.obj, host=host, port=port, https=https, job_options=JobOptions(jobs, cpu_slots, devices))


def _password(password_stdin: bool) -> str:
    if password_stdin:
        return sys.stdin.readline().rstrip("\n")
    first = typer.prompt("Password", hide_input=True)
    if typer.prompt("Repeat it", hide_input=True) != first:
        raise InvalidValueError("the two passwords differ")
    return str(first)


@user_app.command("add")
def add(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name: a lower-case letter, then letters, digits, '.', '_', '-'."),
    password_stdin: bool = typer.Option(False, "--password-stdin", help="Read the password from stdin."),
    admin: bool = typer.Option(False, "--admin", help="May change what other users made (delete, abort, evaluate)."),
) -> None:
    """Add a user (turns sign-in on for the web app)."""
    conn = db.connect(ctx.obj)
    user = users.create_user(conn, name, _password(password_stdin), admin=admin)
    role = " (admin)" if user.admin else ""
    console.print(f"added user {user.name}{role}; the web app now asks to sign in")


@user_app.command("admin")
def admin_command(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name."),
    off: bool = typer.Option(False, "--off", help="Take the admin role away instead."),
) -> None:
    """Make a user an admin (may change what other users made), or with --off no longer."""
    user = users.set_admin(db.connect(ctx.obj), name, not off)
    console.print(f"{user.name} is {'now an admin' if user.admin else 'no longer an admin'}")


@user_app.command("list")
def list_(ctx: typer.Context, json: bool = typer.Option(False, "--json", help="One JSON document.")) -> None:
    """The users."""
    found = users.list_users(db.connect(ctx.obj))
    if json:
        print_json([{"name": u.name, "admin": u.admin} for u in found])
    else:
        console.print("\n".join(u.name + (" (admin)" if u.admin else "") for u in found) or NO_USERS)


NO_USERS = ("no users: a server on 127.0.0.1 runs in local mode (no sign-in); a server on any other address "
            "refuses to start, or, when already running, refuses every request until a user exists")  # fmt: skip


@user_app.command("delete")
def delete(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name."),
    force: bool = typer.Option(False, "--force", help="Delete the last user even while a public server runs."),
) -> None:
    """Delete a user, their sessions and tokens."""
    from deepyard import servers

    conn = db.connect(ctx.obj)
    users.get_user(conn, name)  # NotFoundError names the user
    public = [s for s in servers.running(ctx.obj) if s.public]
    last = [u.name for u in users.list_users(conn)] == [name]
    if last and public and not force:
        raise InvalidValueError(
            f"{name!r} is the last user and the server at {public[0].url} (pid {public[0].pid}) is reachable from "
            "other machines: without a user it would refuse every request. Add another user first, stop that "
            "server, or pass --force"
        )
    users.delete_user(conn, name)
    if last:
        console.print(f"deleted user {name}; {NO_USERS}")
    else:
        console.print(f"deleted user {name}")


@user_app.command("token")
def token(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="User name."),
    label: str = typer.Option("", "--label", help="What the token is for."),
) -> None:
    """Create an API token for scripts: send it as `Authorization: Bearer TOKEN`. Printed once."""
    conn = db.connect(ctx.obj)
    print(users.create_token(conn, users.get_user(conn, name), label))
