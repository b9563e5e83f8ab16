"""What a browser and a reverse proxy see of `/files/tus`: CORS for the configured origins, and
a `Location` that follows X-Forwarded-Proto/-Host only from a trusted proxy. Fast tier."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import procrastinate
import pytest
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from filestore.settings import Settings
from tests.files.tus.client import TUS, metadata_header
from tests.fixtures.app import AsyncApi, bound_sessionmaker, build_app

ORIGIN = "https://portal.example.com"
CREATE = {
    **TUS,
    "Upload-Length": "10",
    "Upload-Metadata": metadata_header({"filename": "a.csv"}),
}

ClientFactory = Callable[..., AbstractAsyncContextManager[AsyncApi]]


@pytest.fixture
def edge_client(
    db_connection: AsyncConnection,
    fast_engine: AsyncEngine,
    fast_queue: procrastinate.App,
    fast_database_url: str,
    fast_settings_base: Settings,
    fast_admin_token: str,
) -> ClientFactory:
    """An admin client on an app with other settings, connecting from `peer`."""

    @asynccontextmanager
    async def factory(peer: str = "203.0.113.7", **overrides: Any) -> AsyncIterator[AsyncApi]:
        settings = fast_settings_base.model_copy(update=overrides)
        app = build_app(
            settings,
            database_url=fast_database_url,
            engine=fast_engine,
            sessionmaker=bound_sessionmaker(db_connection),
            queue=fast_queue,
        )
        transport = httpx.ASGITransport(app=app, client=(peer, 50000))
        async with httpx.AsyncClient(transport=transport, base_url="http://api.internal") as c:
            yield AsyncApi(c, fast_admin_token)

    return factory


class TestLocation:
    async def test_direct_request_uses_the_host_header(self, edge_client: ClientFactory) -> None:
        async with edge_client() as api:
            created = await api.post("/files/tus", headers=CREATE)
        assert created.status_code == 201, created.text
        assert created.headers["Location"].startswith("http://api.internal/files/tus/")

    async def test_trusted_proxy_forwarded_proto_and_host(self, edge_client: ClientFactory) -> None:
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "files.example.com"}
        async with edge_client(peer="127.0.0.1") as api:
            created = await api.post("/files/tus", headers={**CREATE, **forwarded})
        assert created.headers["Location"].startswith("https://files.example.com/files/tus/")

    async def test_untrusted_peer_cannot_forge_the_host(self, edge_client: ClientFactory) -> None:
        forged = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example.net"}
        async with edge_client(peer="198.51.100.9") as api:
            created = await api.post("/files/tus", headers={**CREATE, **forged})
        assert created.headers["Location"].startswith("http://api.internal/files/tus/")

    async def test_proxy_trusted_by_forwarded_allow_ips(self, edge_client: ClientFactory) -> None:
        forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "files.example.com"}
        async with edge_client(peer="10.1.2.3", forwarded_allow_ips="10.0.0.0/8") as api:
            created = await api.post("/files/tus", headers={**CREATE, **forwarded})
        assert created.headers["Location"].startswith("https://files.example.com/files/tus/")

    async def test_public_base_url_wins(self, edge_client: ClientFactory) -> None:
        async with edge_client(public_base_url="https://api.example.org/") as api:
            created = await api.post("/files/tus", headers=CREATE)
        assert created.headers["Location"].startswith("https://api.example.org/files/tus/")


class TestCors:
    async def test_preflight_allows_tus_headers_for_a_configured_origin(
        self, edge_client: ClientFactory
    ) -> None:
        async with edge_client(cors_origins=[ORIGIN]) as api:
            response = await api.request(
                "OPTIONS",
                "/files/tus/0123456789abcdef0123456789abcdef",
                headers={
                    "Origin": ORIGIN,
                    "Access-Control-Request-Method": "PATCH",
                    "Access-Control-Request-Headers": "authorization,tus-resumable,upload-offset,"
                    "content-type,upload-checksum",
                },
            )
        assert response.status_code == 200
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
        allowed = response.headers["Access-Control-Allow-Headers"].lower()
        for header in ("tus-resumable", "upload-offset", "upload-checksum"):
            assert header in allowed

    async def test_responses_expose_offset_and_location(self, edge_client: ClientFactory) -> None:
        async with edge_client(cors_origins=[ORIGIN]) as api:
            created = await api.post("/files/tus", headers={**CREATE, "Origin": ORIGIN})
        assert created.headers["Access-Control-Allow-Origin"] == ORIGIN
        exposed = {
            h.strip().lower() for h in created.headers["Access-Control-Expose-Headers"].split(",")
        }
        assert {"upload-offset", "location", "upload-length", "tus-resumable"} <= exposed
        assert "filestore-file-id" in exposed

    async def test_other_origins_get_no_cors_headers(self, edge_client: ClientFactory) -> None:
        async with edge_client(cors_origins=[ORIGIN]) as api:
            created = await api.post(
                "/files/tus", headers={**CREATE, "Origin": "https://evil.example.net"}
            )
        assert "Access-Control-Allow-Origin" not in created.headers

    async def test_no_cors_by_default(self, edge_client: ClientFactory) -> None:
        async with edge_client() as api:
            created = await api.post("/files/tus", headers={**CREATE, "Origin": ORIGIN})
        assert "Access-Control-Allow-Origin" not in created.headers


def test_cors_origins_setting_is_a_comma_list() -> None:
    settings = Settings(_env_file=None, cors_origins="https://a.example, https://b.example/")
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert Settings(_env_file=None).cors_origins == []
