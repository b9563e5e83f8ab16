"""`POST /files/upload` with hostile form fields: each is a 4xx JSON, never a 500, never a row.

The outside probe of issue 9 found values the form accepted and then failed on: an expiry that
overflows once shifted to UTC (every later read of the row answered 500), JSON metadata that
PostgreSQL refuses (NaN, Infinity, 1e400, `\\u0000`, lone surrogates) or that no serializer can
walk back (nested thousands deep), and NUL characters in text fields.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.files.test_upload import CSV, assert_error
from tests.fixtures.inspect import StoreInspector
from tests.fixtures.live import Api, LiveServer
from tests.fixtures.servers import SeaweedFS


@pytest.fixture(scope="session")
def server(s3_server: LiveServer) -> LiveServer:
    """One server is enough: these rules come before the object store is involved."""
    return s3_server


@pytest.fixture
def store(server: LiveServer, seaweed: SeaweedFS) -> StoreInspector:
    return StoreInspector(server, seaweed)


def assert_refused(response: httpx.Response, code: str) -> None:
    """A 4xx with a JSON `{detail, code}` body (never a 500)."""
    assert 400 <= response.status_code < 500, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["code"] == code, body
    assert body["detail"], body


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
    def test_date_too_far_ahead_is_422_and_reads_keep_working(
        self, admin: Api, customer_id: int, store: StoreInspector, expires_at: str
    ) -> None:
        before = store.snapshot()
        response = admin.upload(CSV, "e.csv", customer_id=customer_id, expires_at=expires_at)
        assert "expires_at" in assert_error(response, 422, "invalid_field")
        store.assert_nothing_new(before)
        listing = admin.get(f"/files/customer/{customer_id}")
        assert listing.status_code == 200, listing.text

    def test_date_in_99_years_is_stored_and_read_back(self, admin: Api, customer_id: int) -> None:
        expires_at = (datetime.now(UTC) + timedelta(days=365 * 99)).replace(microsecond=0)
        response = admin.upload(
            CSV, "e.csv", customer_id=customer_id, expires_at=expires_at.isoformat()
        )
        assert response.status_code == 201, response.text
        file_id = response.json()["id"]
        got = admin.get(f"/files/{file_id}")
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
    def test_value_postgres_cannot_store_is_422(
        self, admin: Api, customer_id: int, store: StoreInspector, metadata: str
    ) -> None:
        before = store.snapshot()
        response = admin.upload(CSV, "m.csv", customer_id=customer_id, metadata=metadata)
        assert_refused(response, "invalid_metadata")
        store.assert_nothing_new(before)

    def test_reasonable_nesting_and_numbers_are_kept(self, admin: Api, customer_id: int) -> None:
        metadata = {
            "deep": json.loads("[" * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1)),
            "big": 10**30,
            "small": -1.5e-300,
            "text": "ünïcode ✓ \U0001f600",
        }
        response = admin.upload(
            CSV, "m.csv", customer_id=customer_id, metadata=json.dumps(metadata)
        )
        assert response.status_code == 201, response.text
        assert admin.get(f"/files/{response.json()['id']}").json()["metadata"] == metadata


class TestNul:
    def test_nul_in_filename_is_422(
        self, admin: Api, customer_id: int, store: StoreInspector
    ) -> None:
        before = store.snapshot()
        response = admin.upload(CSV, "evil.php\x00.csv", customer_id=customer_id)
        assert_refused(response, "invalid_filename")
        store.assert_nothing_new(before)

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
    def test_nul_in_a_text_field_is_422(
        self, admin: Api, store: StoreInspector, name: str, value: str, code: str
    ) -> None:
        before = store.snapshot()
        fields: dict[str, Any] = {name: value}
        assert_refused(admin.upload(CSV, "n.csv", **fields), code)
        store.assert_nothing_new(before)


class TestIdsBeyondInt64:
    @pytest.mark.parametrize("name", ["customer_id", "ticket_id", "service_id"])
    @pytest.mark.parametrize(
        "value",
        ["9223372036854775808", "-9223372036854775809", "9" * 5000],
        ids=["max+1", "min-1", "5000_digits"],
    )
    def test_is_422(self, admin: Api, store: StoreInspector, name: str, value: str) -> None:
        before = store.snapshot()
        fields: dict[str, Any] = {name: value}
        response = admin.upload(CSV, "i.csv", **fields)
        assert name in assert_error(response, 422, "invalid_field")
        store.assert_nothing_new(before)
