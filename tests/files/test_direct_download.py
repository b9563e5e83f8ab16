"""Downloads that skip the API: `?redirect=true` and `/files/{id}/download-url` (presigned GET)."""

from __future__ import annotations

import time
import urllib.parse
from typing import Any

import httpx
import pytest

from tests.conftest import Postgres, ServerFactory
from tests.fixtures.live import Api, LiveServer, production_env
from tests.fixtures.servers import SeaweedFS, s3_env

PDF = b"%PDF-1.4\n" + bytes(range(256)) * 64 + b"\n%%EOF\n"


def stored_pdf(api: Api, **fields: Any) -> dict[str, object]:
    response = api.upload(
        PDF, "Contract 2026 (signed).pdf", content_type="application/pdf", **fields
    )
    assert response.status_code == 201, response.text
    body: dict[str, object] = response.json()
    return body


def is_store_url(url: str, server: LiveServer) -> bool:
    return urllib.parse.urlsplit(url).netloc != urllib.parse.urlsplit(server.base_url).netloc


class TestRedirect:
    def test_redirect_gives_the_same_bytes_and_headers_without_the_token(
        self, server: LiveServer, admin: Api, customer_id: int
    ) -> None:
        file = stored_pdf(admin, customer_id=customer_id)
        response = admin.get(f"/files/download/{file['id']}", params={"redirect": "true"})
        if server.env.get("MINIO_ENDPOINT") is None:
            # The local store has no URL of its own: the API streams, as without redirect.
            assert response.status_code == 200
            assert response.content == PDF
            return
        assert response.status_code == 307, response.text
        location = response.headers["location"]
        assert is_store_url(location, server)
        assert response.headers["cache-control"] == "no-store"

        fetched = httpx.get(location)  # no Authorization: the signature is the permission
        assert fetched.status_code == 200
        assert fetched.content == PDF
        assert fetched.headers["content-type"] == "application/pdf"
        disposition = fetched.headers["content-disposition"]
        assert disposition.startswith("attachment")
        assert "Contract" in urllib.parse.unquote(disposition)

    def test_someone_who_may_not_see_the_file_gets_no_link(
        self, server: LiveServer, admin: Api, customer_id: int
    ) -> None:
        file = stored_pdf(admin, customer_id=customer_id)
        stranger = admin.user_api("customer", int(admin.new_customer()["id"]))
        for path in (
            f"/files/download/{file['id']}?redirect=true",
            f"/files/{file['id']}/download-url",
        ):
            response = stranger.get(path)
            assert response.status_code == 404, path
            assert "location" not in response.headers
            assert "X-Amz-Signature" not in response.text
        assert Api(server.base_url).get(f"/files/{file['id']}/download-url").status_code == 401


class TestDownloadUrl:
    def test_the_link_works_for_its_bytes_only(
        self, server: LiveServer, admin: Api, customer_id: int
    ) -> None:
        file = stored_pdf(admin, customer_id=customer_id)
        other = stored_pdf(admin, customer_id=customer_id)
        response = admin.get(f"/files/{file['id']}/download-url")
        assert response.status_code == 200, response.text
        assert response.headers["cache-control"] == "no-store"
        link = response.json()
        if server.env.get("MINIO_ENDPOINT") is None:
            assert link["direct"] is False
            assert link["expires_at"] is None
            assert admin.get(urllib.parse.urlsplit(link["url"]).path).content == PDF
            return
        assert link["direct"] is True
        assert httpx.get(link["url"]).content == PDF
        # The signature covers the key: the same link pointed at another file is refused.
        other_link = admin.get(f"/files/{other['id']}/download-url").json()["url"]
        own_key = urllib.parse.urlsplit(link["url"]).path
        other_key = urllib.parse.urlsplit(other_link).path
        forged = link["url"].replace(own_key, other_key, 1)
        assert httpx.get(forged).status_code == 403


@pytest.fixture(scope="module")
def short_link_server(
    postgres: Postgres, seaweed: SeaweedFS, start_filestore: ServerFactory
) -> LiveServer:
    """S3 behind a public name (`localhost` instead of the endpoint's 127.0.0.1), 2 s links."""
    env = production_env(postgres.create_database("filestore_links"))
    env.update(s3_env(seaweed))
    port = int(seaweed.endpoint.rsplit(":", 1)[1])
    env["MINIO_PUBLIC_ENDPOINT"] = f"http://localhost:{port}"
    env["DOWNLOAD_URL_TTL_SECONDS"] = "2"
    return start_filestore(env)


def test_links_use_the_public_endpoint_and_expire(short_link_server: LiveServer) -> None:
    admin = short_link_server.admin()
    file = stored_pdf(admin, file_type="backup")
    link = admin.get(f"/files/{file['id']}/download-url").json()
    assert urllib.parse.urlsplit(link["url"]).hostname == "localhost"
    assert httpx.get(link["url"]).content == PDF
    time.sleep(3.5)
    assert httpx.get(link["url"]).status_code == 403


class TestLinksAreAudited:
    def test_each_issued_link_is_an_audit_event(
        self, server: LiveServer, admin: Api, customer_id: int
    ) -> None:
        file = stored_pdf(admin, customer_id=customer_id)
        admin.get(f"/files/download/{file['id']}", params={"redirect": "true"})
        admin.get(f"/files/{file['id']}/download-url")
        actions = [
            e["action"] for e in admin.get("/audit-events", params={"file_id": file["id"]}).json()
        ]
        if server.env.get("MINIO_ENDPOINT") is None:
            # No link exists for the local store: the redirect streamed the bytes.
            assert actions == ["file.downloaded", "file.uploaded"]
        else:
            assert actions == ["file.link_issued", "file.link_issued", "file.uploaded"]
