"""`files.render` writes the JSON of files straight from rows: byte for byte what `FileOut`
(the seed's shape, FastAPI's serialiser) gives for the same values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from types import SimpleNamespace
from typing import Any, cast

from pydantic import TypeAdapter
from sqlalchemy import Row
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.files import queries, render
from filestore.files.models import FileUpload, ScanStatus, UploadStatus
from filestore.files.router import to_out
from filestore.files.schemas import FileOut
from tests.fixtures.app import AsyncApi

BASE = "http://files.example:8000/"


def row(**changes: Any) -> dict[str, Any]:
    """A row's values by name, in the order of `files.queries.LISTED`."""
    values: dict[str, Any] = {
        "id": 9_007_199_254_740_993,  # beyond a double's integers
        "filename": 'Rechnung "März" ✓.pdf',
        "file_size": 4096,
        "mime_type": "application/pdf",
        "file_type": "document",
        "upload_status": UploadStatus.completed,
        "scan_status": ScanStatus.clean,
        "created_at": datetime(2026, 12, 6, 18, 0, 1, 123456, tzinfo=UTC),
        "md5": "0" * 32,
        "sha256": "f" * 64,
        "bucket": "customer-uploads",
        "customer_id": 42,
        "ticket_id": None,
        "service_id": 7,
        "metadata_": {"a": 1.5e20, "b": [None, True, 0.1], "ü": {"x": "<\u2028>"}},
        "expires_at": None,
        "uploaded_by": 1,
    }
    values.update(changes)
    return values


def as_row(values: dict[str, Any]) -> Row[Any]:
    """What `to_out` reads: attributes."""
    return cast("Row[Any]", SimpleNamespace(**values))


def test_the_rows_here_are_in_listed_order() -> None:
    assert list(row()) == [column.key for column in queries.LISTED]


ROWS = [
    row(),
    row(
        id=1,
        created_at=datetime(2026, 1, 1, tzinfo=UTC),  # no microseconds
        expires_at=datetime(2027, 1, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=1))),
        customer_id=None,
        ticket_id=3,
        service_id=None,
        metadata_={},
        uploaded_by=None,
        scan_status=ScanStatus.unscanned,
    ),
]


def test_one_file_is_byte_for_byte_fileout() -> None:
    for r in ROWS:
        expected = to_out(as_row(r), BASE).model_dump_json().encode()
        assert render.file_json(as_row(r), BASE) == expected  # by attribute (an upload's)
        assert render.row_json(tuple(r.values()), BASE) == expected  # by position
        # After the caller's columns, as `files.queries.caller_file_row` returns it.
        assert render.row_json((1, "staff", None, *r.values()), BASE, start=3) == expected


def test_a_page_is_byte_for_byte_a_list_of_fileout() -> None:
    expected = TypeAdapter(list[FileOut]).dump_json([to_out(as_row(r), BASE) for r in ROWS])
    assert render.rows_json([tuple(r.values()) for r in ROWS], BASE) == expected
    prefixed = [(1, "admin", None, 5, *r.values()) for r in ROWS]
    assert render.rows_json(prefixed, BASE, start=4) == expected
    assert render.rows_json([], BASE) == b"[]"


async def test_through_the_app_the_bodies_are_fileouts_of_the_rows(
    admin_client: AsyncApi, db_session: AsyncSession
) -> None:
    customer_id = (await admin_client.new_customer())["id"]
    response = await admin_client.upload(
        b"name\nAda\n",
        "a.csv",
        customer_id=customer_id,
        metadata='{"k": [1, 2.5, "x"]}',
        expires_at="2030-01-01T00:00:00+02:00",
    )
    assert response.status_code == 201, response.text
    file_id = response.json()["id"]
    orm = await db_session.get(FileUpload, file_id)
    assert orm is not None
    base = str(admin_client.client.base_url)
    expected = to_out(orm, base)

    one = await admin_client.get(f"/files/{file_id}")
    assert one.headers["content-type"] == "application/json"
    assert FileOut.model_validate_json(one.content) == expected
    assert one.json() == expected.model_dump(mode="json")
    page = await admin_client.get(f"/files/customer/{customer_id}")
    assert page.json() == [expected.model_dump(mode="json")]


EXPIRES_AT = datetime(2030, 1, 1, tzinfo=timezone(timedelta(hours=2)))


async def test_an_upload_answers_fileout_of_its_row(
    admin_client: AsyncApi, db_session: AsyncSession
) -> None:
    # Both ways through the pipeline: verified whole (one statement) and streamed (the ORM
    # row). The answer is written by `render`, byte for byte `FileOut` of the row as the upload
    # set it: the metadata's keys in the order sent, `expires_at` with the offset sent.
    customer_id = (await admin_client.new_customer())["id"]
    base = str(admin_client.client.base_url)
    for content, name in ((b"name\nAda\n", "small.csv"), (b"name\n" + b"Ada\n" * 5000, "big.csv")):
        response = await admin_client.upload(
            content,
            name,
            customer_id=customer_id,
            metadata='{"zz": [1, 2.5, "x"], "a": null}',
            expires_at="2030-01-01T00:00:00+02:00",
        )
        assert response.status_code == 201, response.text
        assert response.headers["content-type"] == "application/json"
        assert list(response.json()["metadata"]) == ["zz", "a"]
        assert response.json()["expires_at"] == "2030-01-01T00:00:00+02:00"
        stored = await db_session.get(FileUpload, response.json()["id"])
        assert stored is not None
        as_sent = {"metadata": {"zz": [1, 2.5, "x"], "a": None}, "expires_at": EXPIRES_AT}
        expected = to_out(stored, base).model_copy(update=as_sent)
        assert response.content == expected.model_dump_json().encode()
