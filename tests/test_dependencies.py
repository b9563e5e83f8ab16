"""No route runs a dependency (or its handler) in FastAPI's threadpool.

FastAPI calls a plain `def` dependency, a sync generator and a class given to `Depends()` in a
worker thread: a thread hop per dependency per request (~10% of a small request's CPU in the
profile of issue 12). Every dependency here is `async def`; this test fails on the first one
that is not. Pure: the app is built, no request is made."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from filestore.main import create_app
from tests.fixtures.app import fast_settings


def runs_on_the_loop(call: Callable[..., Any]) -> bool:
    """True for what FastAPI awaits in the event loop: coroutine functions, async generator
    functions and instances whose `__call__` is one (OAuth2PasswordBearer)."""
    if inspect.isclass(call):
        return False
    target = inspect.unwrap(call)
    for candidate in (target, getattr(target, "__call__", None)):  # noqa: B004
        if inspect.iscoroutinefunction(candidate) or inspect.isasyncgenfunction(candidate):
            return True
    return False


def api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Every APIRoute, also those of included routers (kept as routers until first use)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from api_routes(inner.routes)
        elif isinstance(route, APIRoute):
            yield route


def threaded(dependant: Dependant) -> Iterator[str]:
    for sub in dependant.dependencies:
        if sub.call is not None and not runs_on_the_loop(sub.call):
            yield getattr(sub.call, "__qualname__", repr(sub.call))
        yield from threaded(sub)


@pytest.fixture(scope="module")
def routes(tmp_path_factory: pytest.TempPathFactory) -> list[APIRoute]:
    data_dir = Path(tmp_path_factory.mktemp("data"))
    settings = fast_settings("postgresql://nobody@localhost/none", data_dir)
    return list(api_routes(create_app(settings).routes))


def test_the_walk_sees_the_hot_routes(routes: list[APIRoute]) -> None:
    paths = {route.path for route in routes}
    assert {"/files/customer/{customer_id}", "/files/{file_id}", "/auth/me"} <= paths
    assert len(routes) > 40


def test_no_route_has_a_sync_dependency_or_handler(routes: list[APIRoute]) -> None:
    found = {
        f"{sorted(route.methods or ())} {route.path}": [
            *threaded(route.dependant),
            *([] if runs_on_the_loop(route.endpoint) else [route.endpoint.__qualname__]),
        ]
        for route in routes
    }
    assert {route: calls for route, calls in found.items() if calls} == {}


def test_the_check_catches_each_kind_of_threaded_call() -> None:
    def plain() -> None: ...

    def sync_gen() -> Iterator[None]:
        yield

    class Klass:
        pass

    async def coroutine() -> None: ...

    assert not any(runs_on_the_loop(c) for c in (plain, sync_gen, Klass))
    assert runs_on_the_loop(coroutine)
