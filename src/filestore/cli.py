"""The `filestore` command: serve, worker, migrate, create-user, import, cleanup."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from filestore.auth.models import Role
from filestore.embedded import database_url_for
from filestore.memory import limit_arenas
from filestore.settings import Settings, get_settings

app = typer.Typer(help="Filestore: file storage for the ISP platform.", no_args_is_help=True)
console = Console(stderr=True)


def _settings() -> Settings:
    try:
        return get_settings()
    except Exception as exc:
        console.print(f"[red]Invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
    reload: Annotated[bool, typer.Option(help="Restart on code changes (development)")] = False,
    workers: Annotated[int, typer.Option(help="Number of API processes")] = 1,
) -> None:
    """Run the HTTP API (embedded PostgreSQL and local storage unless configured otherwise)."""
    import uvicorn

    settings = _settings()
    limit_arenas(settings.malloc_arena_max)  # before any thread: see filestore/memory.py
    options: dict[str, Any] = {
        "factory": True,
        "host": host,
        "port": port,
        "log_level": "info",
        # X-Forwarded-* are read by the app (filestore.forwarded), with X-Forwarded-Host too.
        "proxy_headers": False,
        "timeout_keep_alive": settings.http_keepalive_seconds,
    }
    app_path = "filestore.main:create_app"
    if reload:
        uvicorn.run(app_path, reload=True, **options)
        return
    from filestore.drain import DrainingServer, serve_processes

    # SIGTERM drains (filestore/drain.py), in every process of `--workers N` too; what is still
    # running after the drain gets 1 s.
    config = uvicorn.Config(app_path, timeout_graceful_shutdown=1, workers=workers, **options)
    if workers > 1:
        serve_processes(config, drain_seconds=settings.shutdown_drain_seconds)
    else:
        DrainingServer(config, drain_seconds=settings.shutdown_drain_seconds).run()


@app.command()
def migrate(revision: Annotated[str, typer.Argument(help="Target revision")] = "head") -> None:
    """Apply database migrations (same as `alembic upgrade head`)."""
    from filestore.migrate import database_url_from_env, upgrade

    upgrade(database_url_from_env(), revision)
    console.print(f"[green]Database upgraded to {revision}[/green]")


@app.command("create-user")
def create_user(
    username: Annotated[str, typer.Argument(help="Login name")],
    role: Annotated[Role, typer.Option(help="admin, staff or customer")] = Role.staff,
    customer_id: Annotated[int | None, typer.Option(help="Customer of a customer user")] = None,
    email: Annotated[
        str | None, typer.Option(help="E-mail (customer users log in with it)")
    ] = None,
    password: Annotated[
        str, typer.Option(prompt=True, hide_input=True, confirmation_prompt=True, help="Password")
    ] = "",
) -> None:
    """Create a user from the command line."""
    from filestore.auth import service as auth_service
    from filestore.auth.schemas import UserCreate
    from filestore.db import create_engine, create_sessionmaker
    from filestore.errors import FilestoreError
    from filestore.migrate import upgrade
    from filestore.models import load_all_models

    settings = _settings()
    url = database_url_for(settings)
    upgrade(url)
    load_all_models()

    async def _create() -> int:
        engine = create_engine(settings, url)
        try:
            async with create_sessionmaker(engine)() as session:
                user = await auth_service.create(
                    session,
                    user_in=UserCreate(
                        username=username,
                        password=password,
                        role=role,
                        customer_id=customer_id,
                        email=email,
                    ),
                )
                await session.commit()
                return user.id
        finally:
            await engine.dispose()

    try:
        user_id = asyncio.run(_create())
    except FilestoreError as exc:
        console.print(f"[red]{exc.message}[/red]")
        raise typer.Exit(1) from exc
    except ValueError as exc:
        console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    console.print(f"[green]Created {role.value} user {username!r} (id {user_id})[/green]")


@app.command("reset-password")
def reset_password(
    login: Annotated[str, typer.Argument(help="Username or e-mail of the user")],
) -> None:
    """Print a single-use password reset link for a user (valid PASSWORD_RESET_TTL_HOURS); for
    a customer's e-mail with no login yet, the login is created first."""
    from filestore.auth import reset as reset_service
    from filestore.auth import service as auth_service
    from filestore.customers import service as customers_service
    from filestore.db import create_engine, create_sessionmaker
    from filestore.migrate import upgrade
    from filestore.models import load_all_models

    settings = _settings()
    url = database_url_for(settings)
    upgrade(url)
    load_all_models()

    async def _issue() -> tuple[str, str] | None:
        from filestore.requests import ClientInfo

        engine = create_engine(settings, url)
        try:
            client = ClientInfo(user_agent="filestore-cli")
            async with create_sessionmaker(engine)() as session:
                user = await auth_service.get_by_login(session, login)
                if user is None:
                    customer = await customers_service.get_by_email(session, login)
                    if customer is None:
                        return None
                    user = await customers_service.ensure_login(
                        session, customer=customer, actor_id=None, client=client
                    )
                issued = await reset_service.issue(
                    session, user=user, actor_id=None, client=client, settings=settings
                )
                await session.commit()
                return user.username, issued.url
        finally:
            await engine.dispose()

    result = asyncio.run(_issue())
    if result is None:
        console.print(f"[red]No user {login!r}[/red]")
        raise typer.Exit(1)
    username, link = result
    console.print(
        f"[green]Reset link for {username!r}[/green] (single use, valid "
        f"{settings.password_reset_ttl_hours:g} h; an earlier link stops working):"
    )
    print(link)


@app.command()
def worker(
    concurrency: Annotated[int, typer.Option(help="Jobs run at the same time")] = 2,
) -> None:
    """Run a background-job worker (CSV imports, cleanup) until SIGINT/SIGTERM."""
    from filestore.worker import run_standalone_worker

    settings = _settings()
    limit_arenas(settings.malloc_arena_max)
    url = database_url_for(settings)
    if settings.auto_migrate:
        from filestore.migrate import upgrade

        upgrade(url)  # the queue's tables must exist; an advisory lock makes this safe
    asyncio.run(run_standalone_worker(settings, url, concurrency=concurrency))


@app.command()
def cleanup() -> None:
    """Run the cleanup sweep now: expired files, orphan objects, stuck rows, stale uploads."""
    from filestore.worker import run_cleanup_once

    settings = _settings()
    result = asyncio.run(run_cleanup_once(settings, database_url_for(settings)))
    if result is None:
        console.print("[yellow]Another cleanup is running; try again later[/yellow]")
        raise typer.Exit(1)
    console.print_json(data=result)
    raise typer.Exit(0 if result.get("status") == "completed" else 1)


def _parse_mapping(pairs: list[str], mapping_json: str | None) -> dict[str, str]:
    mapping: dict[str, str] = {}
    if mapping_json:
        loaded = json.loads(mapping_json)
        if not isinstance(loaded, dict):
            raise typer.BadParameter("--mapping-json must be a JSON object")
        mapping.update({str(k): str(v) for k, v in loaded.items()})
    for pair in pairs:
        column, sep, target = pair.partition("=")
        if not sep:
            raise typer.BadParameter(f"--mapping takes COLUMN=FIELD, got {pair!r}")
        mapping[column.strip()] = target.strip()
    return mapping


@app.command("import")
def import_customers(
    path: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="Customers CSV file")],
    mapping: Annotated[
        list[str] | None,
        typer.Option("--mapping", help="COLUMN=FIELD, e.g. name=full_name (repeatable)"),
    ] = None,
    mapping_json: Annotated[
        str | None, typer.Option(help='JSON object, e.g. {"name": "full_name"}')
    ] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate and count without writing")] = False,
    email_required: Annotated[
        bool, typer.Option(help="Rows without e-mail fail (else: skipped)")
    ] = True,
    phone_format: Annotated[str, typer.Option(help="digits_only or any")] = "digits_only",
) -> None:
    """Import customers from a CSV file, with a progress bar and the same counts as the API."""
    from filestore.imports.cli_import import run_cli_import

    settings = _settings()
    url = database_url_for(settings)
    from filestore.migrate import upgrade
    from filestore.models import load_all_models

    upgrade(url)
    load_all_models()
    params = {
        "import_type": "customers",
        "mapping_config": _parse_mapping(mapping or [], mapping_json),
        "validation_rules": {
            "email_required": email_required,
            "phone_format": phone_format,
            "dry_run": dry_run,
        },
        "source": f"cli:{path.name}",
    }
    status = asyncio.run(run_cli_import(settings, url, path, params, console))
    raise typer.Exit(0 if status == "completed" else 1)


def main() -> None:
    app()
