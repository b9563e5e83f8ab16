"""Starting imports through the app (fast tier: the job is deferred, never run)."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.app import AsyncApi

CSV = b"name,email,phone\nAda Lovelace,ada@example.com,555 0100\n"


async def start(api: AsyncApi, mapping: dict[str, str]) -> httpx.Response:
    uploaded = await api.upload(CSV, "customers.csv", file_type="csv")
    assert uploaded.status_code == 201, uploaded.text
    body: dict[str, Any] = {
        "file_upload_id": uploaded.json()["id"],
        "import_type": "customers",
        "mapping_config": mapping,
    }
    return await api.post("/files/csv-import", json=body)


class TestMappingAliases:
    async def test_the_isp_platforms_own_payload_is_accepted(self, admin_client: AsyncApi) -> None:
        response = await start(admin_client, {"name": "name", "email": "email", "phone": "phone"})
        assert response.status_code == 202, response.text
        assert response.json()["status"] == "pending"

    async def test_every_documented_alias_is_accepted(self, admin_client: AsyncApi) -> None:
        aliases = ["zip", "zip_code", "postcode", "e-mail", "mobile", "telephone", "province"]
        aliases += ["region", "street", "name"]
        for alias in aliases:
            response = await start(admin_client, {"name": alias})
            assert response.status_code == 202, (alias, response.text)

    async def test_an_unknown_field_is_still_refused_naming_it(
        self, admin_client: AsyncApi
    ) -> None:
        response = await start(admin_client, {"name": "nickname"})
        assert response.status_code == 422, response.text
        body = response.json()
        assert body["code"] == "validation_error"
        assert "nickname" in str(body["detail"])
