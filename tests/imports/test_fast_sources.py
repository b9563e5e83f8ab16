"""Starting imports of files as people have them (fast tier: the job is deferred, never run):
which files and which reading rules the API takes, and the 422s for the rest."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.auth.support import assert_error
from tests.fixtures.app import AsyncApi
from tests.imports.xlsx_files import inline_row, ole2, sheet_xml, workbook

CSV = "full_name;email\nZoë;zoe@example.com\n".encode("cp1252")


async def start(
    api: AsyncApi,
    content: bytes = CSV,
    filename: str = "customers.csv",
    *,
    file_type: str = "csv",
    rules: dict[str, Any] | None = None,
) -> httpx.Response:
    uploaded = await api.upload(
        content, filename, content_type="application/octet-stream", file_type=file_type
    )
    assert uploaded.status_code == 201, uploaded.text
    body: dict[str, Any] = {"file_upload_id": uploaded.json()["id"], "import_type": "customers"}
    if rules is not None:
        body["validation_rules"] = rules
    return await api.post("/files/csv-import", json=body)


class TestFiles:
    async def test_xlsx_workbook_is_accepted(self, admin_client: AsyncApi) -> None:
        book = workbook([("S", sheet_xml([inline_row(1, ["full_name", "email"])]))])
        response = await start(admin_client, book, "customers.xlsx", file_type="xlsx")
        assert response.status_code == 202, response.text

    async def test_xls_is_refused_saying_what_to_do(self, admin_client: AsyncApi) -> None:
        response = await start(admin_client, ole2("Workbook"), "customers.xls", file_type="xls")
        body = assert_error(response, 422, "xls_not_supported")
        assert ".xlsx" in body["detail"]
        assert "CSV UTF-8" in body["detail"]


class TestRules:
    @pytest.mark.parametrize(
        "rules",
        [
            {"encoding": "windows-1252"},
            {"encoding": "CP1252"},
            {"encoding": "utf-16"},
            {"encoding": "latin-1"},
            {"phone_format": "e164", "default_region": "de"},
            {"phone_format": "e164"},
            {"sheet": "Customers"},
        ],
    )
    async def test_accepted(self, admin_client: AsyncApi, rules: dict[str, Any]) -> None:
        response = await start(admin_client, rules=rules)
        assert response.status_code == 202, response.text

    @pytest.mark.parametrize(
        ("rules", "words"),
        [
            ({"encoding": "ebcdic"}, "windows-1252"),
            ({"encoding": "rot13"}, "Unknown or unsupported encoding"),
            ({"default_region": "XX"}, "two-letter"),
            ({"phone_format": "international"}, "phone_format"),
        ],
    )
    async def test_refused_naming_the_choices(
        self, admin_client: AsyncApi, rules: dict[str, Any], words: str
    ) -> None:
        response = await start(admin_client, rules=rules)
        body = assert_error(response, 422)
        assert words in str(body["detail"])
