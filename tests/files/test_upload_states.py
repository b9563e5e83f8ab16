"""A form upload goes through the same states as a direct or resumable one: `uploading` while
its bytes stream (never listed, never served), then `completed`; refused bytes leave a
`rejected` row with the reason and no object."""

from __future__ import annotations

import asyncio
import hashlib
import os
import uuid
from collections.abc import AsyncIterator

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from filestore.files.models import FileUpload, UploadStatus
from filestore.settings import Settings
from tests.fixtures.app import AsyncApi

CSV = b"name,email\n" + b"Ada,ada@example.com\n" * 2000


def form(boundary: str, customer_id: int, filename: str, **fields: str) -> tuple[bytes, bytes]:
    """The multipart body around the file's bytes: (head, tail)."""
    head = b""
    for name, value in {"customer_id": str(customer_id), **fields}.items():
        head += (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        ).encode()
    head += (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    return head, f"\r\n--{boundary}--\r\n".encode()


def form_type(boundary: str) -> dict[str, str]:
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}


async def rows_of(session: AsyncSession, customer_id: int) -> list[FileUpload]:
    stmt = select(FileUpload).where(FileUpload.customer_id == customer_id)
    return list((await session.execute(stmt.execution_options(populate_existing=True))).scalars())


def objects_in(settings: Settings) -> set[str]:
    return {
        os.path.join(directory, name)
        for directory, _, names in os.walk(settings.objects_dir)
        for name in names
    }


async def test_a_form_upload_is_uploading_until_its_last_byte_and_never_shown_before(
    admin_client: AsyncApi, db_session: AsyncSession
) -> None:
    customer_id = int((await admin_client.new_customer())["id"])
    boundary = uuid.uuid4().hex
    head, tail = form(boundary, customer_id, "list.csv")
    half = len(CSV) // 2
    halfway, resume = asyncio.Event(), asyncio.Event()

    async def body() -> AsyncIterator[bytes]:
        yield head + CSV[:half]
        halfway.set()
        await resume.wait()
        yield CSV[half:] + tail

    sending = asyncio.create_task(
        admin_client.post("/files/upload", content=body(), headers=form_type(boundary))
    )
    await asyncio.wait_for(halfway.wait(), 10)
    for _ in range(100):  # the app reads the first half, then writes the row
        rows = await rows_of(db_session, customer_id)
        if rows:
            break
        await asyncio.sleep(0.02)
    assert [row.upload_status for row in rows] == [UploadStatus.uploading]
    in_flight = rows[0].id
    assert (await admin_client.get(f"/files/{in_flight}")).status_code == 404
    assert (await admin_client.get(f"/files/download/{in_flight}")).status_code == 404
    assert (await admin_client.get(f"/files/customer/{customer_id}")).json() == []

    resume.set()
    response = await asyncio.wait_for(sending, 30)
    assert response.status_code == 201, response.text
    assert response.json()["id"] == in_flight
    assert response.json()["upload_status"] == "completed"
    [row] = await rows_of(db_session, customer_id)
    assert row.upload_status is UploadStatus.completed
    assert row.sha256 == hashlib.sha256(CSV).hexdigest()
    assert (await admin_client.get(f"/files/download/{in_flight}")).content == CSV


async def test_refused_bytes_leave_a_rejected_row_with_the_reason_and_no_object(
    admin_client: AsyncApi, db_session: AsyncSession, fast_settings_base: Settings
) -> None:
    customer_id = int((await admin_client.new_customer())["id"])
    before = objects_in(fast_settings_base)
    wrong = hashlib.sha256(b"something else").hexdigest()
    refused = await admin_client.upload(
        CSV, "a.csv", customer_id=customer_id, checksum_sha256=wrong
    )
    assert refused.status_code == 422
    assert refused.json()["code"] == "checksum_mismatch"
    not_a_png = await admin_client.upload(CSV, "b.png", customer_id=customer_id)
    assert not_a_png.status_code == 415
    assert not_a_png.json()["code"] == "content_mismatch"

    rows = await rows_of(db_session, customer_id)
    assert sorted((row.filename, row.upload_status, row.rejection_reason) for row in rows) == [
        ("a.csv", UploadStatus.rejected, "checksum"),
        ("b.png", UploadStatus.rejected, "type"),
    ]
    assert objects_in(fast_settings_base) == before
    for row in rows:
        assert (await admin_client.get(f"/files/{row.id}")).status_code == 404
        assert (await admin_client.get(f"/files/download/{row.id}")).status_code == 404
    assert (await admin_client.get(f"/files/customer/{customer_id}")).json() == []


async def test_a_field_the_upload_refuses_leaves_no_row(
    admin_client: AsyncApi, db_session: AsyncSession
) -> None:
    customer_id = int((await admin_client.new_customer())["id"])
    boundary = uuid.uuid4().hex
    head, _ = form(boundary, customer_id, "c.csv")
    # A ticket that does not exist, sent after the file (curl's order): refused at the end.
    late = f'--{boundary}\r\nContent-Disposition: form-data; name="ticket_id"\r\n\r\n999999\r\n'
    body = head + CSV + b"\r\n" + late.encode() + f"--{boundary}--\r\n".encode()
    response = await admin_client.post("/files/upload", content=body, headers=form_type(boundary))
    assert 400 <= response.status_code < 500, response.text
    assert await rows_of(db_session, customer_id) == []
