"""`POST /files/upload` with hostile form fields: each is a 4xx JSON, never a 500, never a row.

The outside probe of issue 9 found values the form accepted and then failed on: an expiry that
overflows once shifted to UTC (every later read of the row answered 500), JSON metadata that
PostgreSQL refuses (NaN, Infinity, 1e400, `\\u0000`, lone surrogates) or that no serializer can
walk back (nested thousands deep), and NUL characters in text fields. Fast tier: the app in
process, one rolled-back transaction, a local store.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.files.models import FileUpload, UploadStatus
from filestore.settings import Settings
from tests.files.test_upload import CSV, multipart_body
from tests.fixtures.app import AsyncApi


@dataclass(frozen=True)
class Stored:
    objects: frozenset[str]
    rows: int


@dataclass
class Store:
    """The fast tier's local object store and `file_uploads`, to prove nothing was kept."""

    settings: Settings
    session: AsyncSession

    async def snapshot(self) -> Stored:
        found = {
            os.path.join(directory, name)
            for directory, _, names in os.walk(self.settings.objects_dir)
            for name in names
        }
        # A `rejected` row records a verdict on deleted bytes; it holds nothing.
        stmt = select(func.count()).select_from(FileUpload)
        rows = await self.session.scalar(
            stmt.where(FileUpload.upload_status != UploadStatus.rejected)
        )
        return Stored(frozenset(found), int(rows or 0))

    async def assert_nothing_new(self, before: Stored) -> None:
        after = await self.snapshot()
        assert after.rows == before.rows, "a file_uploads row was written"
        assert after.objects == before.objects, f"objects left: {after.objects - before.objects}"


@pytest.fixture
def store(fast_settings_base: Settings, db_session: AsyncSession) -> Store:
    return Store(fast_settings_base, db_session)


@pytest.fixture
async def customer_id(admin_client: AsyncApi) -> int:
    return int((await admin_client.new_customer())["id"])


async def upload(api: AsyncApi, filename: str = "f.csv", **fields: str | int) -> httpx.Response:
    """The fields, then the file, as raw multipart (no client escapes what we send)."""
    parts = [(name, None, str(value).encode()) for name, value in fields.items()]
    boundary = uuid.uuid4().hex
    body = multipart_body([*parts, ("file", filename, CSV)], boundary)
    headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    return await api.post("/files/upload", content=body, headers=headers)


def assert_refused(response: httpx.Response, code: str) -> str:
    """A 4xx with a JSON `{detail, code}` body (never a 500); returns the detail."""
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["detail"], body
    return str(body["detail"])


class TestExpiresAt:
    @pytest.mark.parametrize(
        "expires_at",
        [
            "9999-12-31T23:59:59-14:00",
            "9999-12-31T23:59:59+00:00",
            "9999-12-31T23:59:59",
            (datetime.now(UTC) + timedelta(days=366 * 101)).isoformat(),
        ],
        ids=["year_9999_minus_14h", "year_9999_utc", "year_9999_naive", "in_101_years"],
    )
    async def test_date_too_far_ahead_is_422_and_reads_keep_working(
        self, admin_client: AsyncApi, customer_id: int, store: Store, expires_at: str
    ) -> None:
        before = await store.snapshot()
        response = await upload(admin_client, customer_id=customer_id, expires_at=expires_at)
        assert response.status_code == 422, response.text
        assert "expires_at" in assert_refused(response, "invalid_field")
        await store.assert_nothing_new(before)
        listing = await admin_client.get(f"/files/customer/{customer_id}")
        assert listing.status_code == 200, listing.text

    async def test_date_in_99_years_is_stored_and_read_back(
        self, admin_client: AsyncApi, customer_id: int
    ) -> None:
        expires_at = (datetime.now(UTC) + timedelta(days=365 * 99)).replace(microsecond=0)
        response = await upload(
            admin_client, customer_id=customer_id, expires_at=expires_at.isoformat()
        )
        assert response.status_code == 201, response.text
        got = await admin_client.get(f"/files/{response.json()['id']}")
        assert got.status_code == 200, got.text
        assert datetime.fromisoformat(got.json()["expires_at"]) == expires_at


DEEP = 5000
MAX_DEPTH = 64  # levels of nesting, the metadata object itself included


class TestMetadata:
    @pytest.mark.parametrize(
        "metadata",
        [
            '{"a": ' + "[" * DEEP + "]" * DEEP + "}",
            '{"a": ' + '{"b": ' * DEEP + "1" + "}" * DEEP + "}",
            '{"a": ' + "[" * MAX_DEPTH + "]" * MAX_DEPTH + "}",
            '{"a": "\\ud800"}',
            '{"\\udfff": 1}',
            '{"a": NaN}',
            '{"a": Infinity}',
            '{"a": -Infinity}',
            '{"a": 1e400}',
            '{"a": [1, -1e400]}',
            '{"a": "x\\u0000y"}',
            '{"\\u0000": "key with NUL"}',
        ],
        ids=[
            "5000_arrays_deep",
            "5000_objects_deep",
            "65_deep",
            "lone_high_surrogate",
            "lone_low_surrogate_key",
            "nan",
            "infinity",
            "minus_infinity",
            "1e400",
            "minus_1e400_in_list",
            "nul_in_value",
            "nul_in_key",
        ],
    )
    async def test_value_postgres_cannot_store_is_422(
        self, admin_client: AsyncApi, customer_id: int, store: Store, metadata: str
    ) -> None:
        before = await store.snapshot()
        response = await upload(admin_client, customer_id=customer_id, metadata=metadata)
        assert response.status_code == 422, response.text
        assert_refused(response, "invalid_metadata")
        await store.assert_nothing_new(before)

    async def test_reasonable_nesting_and_numbers_are_kept(
        self, admin_client: AsyncApi, customer_id: int
    ) -> None:
        metadata = {
            "deep": json.loads("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)),
            "big": 10**30,
            "small": -1.5e-300,
            "text": "ünïcode ✓ \U0001f600",
        }
        response = await upload(
            admin_client, customer_id=customer_id, metadata=json.dumps(metadata)
        )
        assert response.status_code == 201, response.text
        got = await admin_client.get(f"/files/{response.json()['id']}")
        assert got.json()["metadata"] == metadata


class TestNul:
    async def test_nul_in_filename_is_422(
        self, admin_client: AsyncApi, customer_id: int, store: Store
    ) -> None:
        before = await store.snapshot()
        response = await upload(admin_client, "evil.php\x00.csv", customer_id=customer_id)
        assert response.status_code == 422, response.text
        assert_refused(response, "invalid_filename")
        await store.assert_nothing_new(before)

    @pytest.mark.parametrize(
        ("name", "value", "code"),
        [
            ("file_type", "doc\x00ument", "invalid_field"),
            ("customer_id", "1\x00", "invalid_field"),
            ("expires_at", "2099-01-01\x00", "invalid_field"),
            ("checksum_sha256", "\x00" * 64, "invalid_field"),
            ("description", "hello\x00", "unknown_field"),
            ("tags", "a,\x00b", "unknown_field"),
            ("meta\x00data", "{}", "unknown_field"),
        ],
        ids=["file_type", "customer_id", "expires_at", "checksum", "description", "tags", "name"],
    )
    async def test_nul_in_a_text_field_is_422(
        self, admin_client: AsyncApi, store: Store, name: str, value: str, code: str
    ) -> None:
        before = await store.snapshot()
        assert_refused(await upload(admin_client, **{name: value}), code)
        await store.assert_nothing_new(before)


class TestIdsBeyondInt64:
    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("customer_id", "9223372036854775808"),
            ("ticket_id", "-9223372036854775809"),
            ("service_id", "9" * 5000),
        ],
        ids=["max+1", "min-1", "5000_digits"],
    )
    async def test_is_422(
        self, admin_client: AsyncApi, store: Store, name: str, value: str
    ) -> None:
        before = await store.snapshot()
        response = await upload(admin_client, **{name: value})
        assert response.status_code == 422, response.text
        assert name in assert_refused(response, "invalid_field")
        await store.assert_nothing_new(before)
