"""What every request passes through: a UTF-8 URL, the request body limit, the security headers,
and the setting that hides the API docs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest

from filestore.main import create_app
from filestore.settings import Settings
from tests.fixtures.app import FAST_MAX_FILE_SIZE, AsyncApi

LIMIT = 1_048_576  # MAX_JSON_BODY_SIZE's default, which the fast tier keeps
MIB = b"x" * 1_048_576


class Chunks:
    """A request body streamed in 1 MiB chunks that counts how many the server pulled."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for _ in range(self.count):
            self.pulled += 1
            yield MIB


def assert_body_too_large(response: httpx.Response) -> None:
    assert response.status_code == 413, response.text
    body = response.json()
    assert body["code"] == "body_too_large"
    assert str(LIMIT) in body["detail"]


class TestBodyLimit:
    async def test_a_declared_100_mb_login_is_refused_without_reading_it(
        self, app_client: AsyncApi
    ) -> None:
        body = Chunks(100)
        response = await app_client.post(
            "/auth/login",
            content=body,
            headers={"Content-Type": "application/json", "Content-Length": str(100 * LIMIT)},
        )

        assert_body_too_large(response)
        assert body.pulled == 0

    async def test_a_chunked_body_is_stopped_at_the_limit(self, admin_client: AsyncApi) -> None:
        body = Chunks(100)
        response = await admin_client.post(
            "/customers", content=body, headers={"Content-Type": "application/json"}
        )

        assert_body_too_large(response)
        assert body.pulled <= 2

    async def test_one_byte_over_is_refused_and_the_limit_itself_is_read(
        self, app_client: AsyncApi
    ) -> None:
        def login_body(size: int) -> bytes:
            body = json.dumps({"username": "nobody", "password": "wrong-password"}).encode()
            return body[:-1] + b" " * (size - len(body)) + b"}"

        over = await app_client.post(
            "/auth/login",
            content=login_body(LIMIT + 1),
            headers={"Content-Type": "application/json"},
        )
        at_limit = await app_client.post(
            "/auth/login", content=login_body(LIMIT), headers={"Content-Type": "application/json"}
        )

        assert_body_too_large(over)
        assert at_limit.status_code == 401, at_limit.text

    async def test_a_form_encoded_login_is_limited_too(self, app_client: AsyncApi) -> None:
        response = await app_client.post(
            "/auth/login", data={"username": "x" * (2 * LIMIT), "password": "pw"}
        )

        assert_body_too_large(response)

    async def test_the_upload_keeps_max_file_size_as_its_limit(
        self, admin_client: AsyncApi
    ) -> None:
        content = b"name,email\n" + b"a,b@example.com\n" * (3 * LIMIT // 16)
        assert LIMIT < len(content) < FAST_MAX_FILE_SIZE

        response = await admin_client.upload(content, "big.csv")

        assert response.status_code == 201, response.text
        assert response.json()["file_size"] == len(content)


class TestUtf8Url:
    @pytest.mark.parametrize(
        "url",
        ["/customers?q=%ED%A0%80", "/customers?email=%FF", "/files/%C3%28", "/users?role=a%80b"],
    )
    async def test_percent_escapes_that_are_not_utf8_are_a_400(
        self, admin_client: AsyncApi, url: str
    ) -> None:
        response = await admin_client.get(url)
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "invalid_url"

    async def test_utf8_escapes_are_searched_as_sent(self, admin_client: AsyncApi) -> None:
        await admin_client.new_customer(full_name="Zoë Ünal")
        response = await admin_client.get("/customers?q=Zo%C3%AB+%C3%9Cnal")
        assert response.status_code == 200, response.text
        assert [c["full_name"] for c in response.json()] == ["Zoë Ünal"]


class TestSecurityHeaders:
    @pytest.mark.parametrize(
        ("method", "path", "status"),
        [
            ("GET", "/openapi.json", 200),
            ("GET", "/no/such/page", 404),
            ("GET", "/auth/me", 401),
            ("GET", "/customers/0", 401),
            ("POST", "/auth/login", 422),
            ("DELETE", "/auth/login", 405),
        ],
    )
    async def test_every_response_says_nosniff(
        self, app_client: AsyncApi, method: str, path: str, status: int
    ) -> None:
        response = await app_client.request(method, path, json={})

        assert response.status_code == status
        assert response.headers["x-content-type-options"] == "nosniff"

    async def test_validation_errors_and_downloads_too(self, admin_client: AsyncApi) -> None:
        invalid = await admin_client.get("/customers/0")
        uploaded = (await admin_client.upload(b"a,b\n1,2\n", "n.csv")).json()
        download = await admin_client.get(f"/files/download/{uploaded['id']}")
        too_large = await admin_client.post(
            "/customers", content=b" " * (LIMIT + 1), headers={"Content-Type": "application/json"}
        )

        for response, status in ((invalid, 422), (download, 200), (too_large, 413)):
            assert response.status_code == status
            assert response.headers.get_list("x-content-type-options") == ["nosniff"]


class TestApiDocsSetting:
    async def test_docs_and_schema_are_served_by_default(self, app_client: AsyncApi) -> None:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert (await app_client.get(path)).status_code == 200, path

    async def test_turned_off_they_are_not_found(self, fast_settings_base: Settings) -> None:
        settings = fast_settings_base.model_copy(update={"filestore_api_docs": False})
        transport = httpx.ASGITransport(app=create_app(settings))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            for path in ("/docs", "/redoc", "/openapi.json", "/docs/oauth2-redirect"):
                response = await client.get(path)
                assert response.status_code == 404, path
                assert response.json()["code"] == "not_found"


class TestSettings:
    def test_read_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("MAX_JSON_BODY_SIZE", "65536  # 64 KiB")
        monkeypatch.setenv("FILESTORE_API_DOCS", "false")

        settings = Settings(_env_file=None)

        assert settings.max_json_body_size == 65536
        assert settings.filestore_api_docs is False

    def test_defaults(self) -> None:
        settings = Settings(_env_file=None)

        assert settings.max_json_body_size == LIMIT
        assert settings.filestore_api_docs is True


class TestDrain:
    async def test_a_draining_process_refuses_new_requests_with_a_json_503(
        self, admin_client: AsyncApi
    ) -> None:
        from filestore.drain import DRAIN

        assert (await admin_client.get("/health/live")).status_code == 200
        DRAIN.draining = True
        try:
            for path in ("/health", "/files/customer/1"):
                response = await admin_client.get(path)
                assert response.status_code == 503
                assert response.json()["code"] == "shutting_down"
                assert response.headers["connection"] == "close"
        finally:
            DRAIN.draining = False
        assert DRAIN.in_flight == 0  # every request counted in was counted out
