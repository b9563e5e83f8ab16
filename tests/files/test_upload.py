"""`POST /files/upload` against a live server, on S3 (SeaweedFS) and on the local store.

Every rule of the upload contract (issue 2): the size limit while streaming, checksums, type
and content validation, form fields, bucket routing (fields before or after the file), the
response body, client disconnects and who may upload for whom. Where a refusal must leave
nothing behind, the object store and the `file_uploads` table are inspected directly.
"""

from __future__ import annotations

import hashlib
import http.client
import io
import json
import random
import socket
import struct
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from tests.conftest import TEST_MAX_FILE_SIZE
from tests.fixtures.inspect import StoreInspector, StoreSnapshot, poll
from tests.fixtures.live import Api, LiveServer
from tests.fixtures.raw_http import open_post, send_until_answered
from tests.fixtures.servers import SeaweedFS

MiB = 1024 * 1024

# -- content ------------------------------------------------------------------------------------


def png_bytes() -> bytes:
    """A valid 1x1 RGB PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    chunks = chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + chunks


def jpeg_bytes() -> bytes:
    """A JFIF header followed by the end-of-image marker."""
    return b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00\xff\xd9"


def random_bytes(size: int, seed: int = 2) -> bytes:
    """Deterministic noise (seeded, so no magic number can appear by chance in one run only)."""
    return random.Random(seed).randbytes(size)


def pdf_bytes(size: int = 4096) -> bytes:
    return (b"%PDF-1.4\n" + random_bytes(size))[:size]


def docx_bytes() -> bytes:
    """A minimal Office Open XML word-processing package."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as package:
        package.writestr(
            "[Content_Types].xml",
            '<?xml version="1.0"?><Types xmlns='
            '"http://schemas.openxmlformats.org/package/2006/content-types"/>',
        )
        package.writestr("word/document.xml", "<w:document/>")
    return buffer.getvalue()


def csv_bytes(size: int) -> bytes:
    """CSV text of exactly `size` bytes."""
    line = b"42,Jane Doe,jane@example.com\n"
    return (b"id,name,email\n" + line * (size // len(line) + 1))[:size]


CSV = b"full_name,email\nJohn Doe,john@example.com\n"
DOCX_MIME = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# -- requests -----------------------------------------------------------------------------------

Part = tuple[str, str | None, bytes]  # (form name, filename or None for a plain field, bytes)


def multipart_body(parts: Sequence[Part], boundary: str) -> bytes:
    """A multipart/form-data body with exactly these parts, in this order."""
    out = bytearray()
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode()
        out += content + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


def post_body(api: Api, body: bytes, content_type: str) -> httpx.Response:
    return api.post("/files/upload", content=body, headers={"Content-Type": content_type})


def post_parts(api: Api, parts: Sequence[Part]) -> httpx.Response:
    boundary = uuid.uuid4().hex
    content_type = f"multipart/form-data; boundary={boundary}"
    return post_body(api, multipart_body(parts, boundary), content_type)


def open_raw_upload(
    server: LiveServer, token: str, *, boundary: str, headers: dict[str, str]
) -> socket.socket:
    """A socket with the request line and headers of an upload sent, no body yet."""
    return open_post(
        server,
        "/files/upload",
        {
            "Authorization": f"Bearer {token}",
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            **headers,
        },
    )


def read_raw_response(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    response = http.client.HTTPResponse(sock)
    response.begin()
    body: dict[str, Any] = json.loads(response.read())
    return response.status, body


def form_head(boundary: str, fields: dict[str, str], filename: str) -> bytes:
    """The start of a form body: `fields`, then the headers of the file part, whose bytes and
    closing boundary the caller sends (or not)."""
    parts: list[Part] = [(name, None, value.encode()) for name, value in fields.items()]
    head = multipart_body(parts, boundary).removesuffix(f"--{boundary}--\r\n".encode())
    return (
        head
        + (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
    )


# -- assertions ---------------------------------------------------------------------------------


def assert_error(response: httpx.Response, status: int, code: str) -> str:
    """The response is `status` with a JSON `{"detail", "code": code}` body; returns detail."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code, body
    assert body["detail"], body
    return str(body["detail"])


def assert_created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    assert body["upload_status"] == "completed"
    return body


def download(api: Api, file_id: int) -> httpx.Response:
    response = api.get(f"/files/download/{file_id}")
    assert response.status_code == 200, response.text
    return response


def listed_ids(api: Api, customer_id: int) -> list[int]:
    response = api.get(f"/files/customer/{customer_id}")
    assert response.status_code == 200, response.text
    return [int(f["id"]) for f in response.json()]


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# -- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def store(server: LiveServer, seaweed: SeaweedFS) -> StoreInspector:
    return StoreInspector(server, seaweed)


# -- tests --------------------------------------------------------------------------------------


class TestSizeLimit:
    def test_one_byte_over_is_413_and_nothing_stored(
        self, admin: Api, customer_id: int, store: StoreInspector
    ) -> None:
        before = store.snapshot()
        content = csv_bytes(TEST_MAX_FILE_SIZE + 1)
        response = admin.upload(content, "big.csv", customer_id=customer_id)
        assert "limit" in assert_error(response, 413, "file_too_large")
        assert listed_ids(admin, customer_id) == []
        store.assert_nothing_new(before)

    def test_exactly_the_limit_is_201_with_right_digests(
        self, admin: Api, customer_id: int
    ) -> None:
        content = csv_bytes(TEST_MAX_FILE_SIZE)
        body = assert_created(admin.upload(content, "limit.csv", customer_id=customer_id))
        assert body["file_size"] == TEST_MAX_FILE_SIZE
        assert body["sha256"] == hashlib.sha256(content).hexdigest()
        assert body["md5"] == hashlib.md5(content).hexdigest()
        assert hashlib.sha256(download(admin, body["id"]).content).hexdigest() == body["sha256"]

    @pytest.mark.parametrize("expect_continue", [False, True], ids=["plain", "expect_100"])
    def test_content_length_far_over_the_limit_is_413_before_the_body(
        self, server: LiveServer, admin: Api, store: StoreInspector, expect_continue: bool
    ) -> None:
        before = store.snapshot()
        assert admin.token is not None
        boundary = uuid.uuid4().hex
        headers = {"Content-Length": str(1024 * MiB)}
        if expect_continue:
            headers["Expect"] = "100-continue"  # curl's way: no body until the server says so
        started = time.monotonic()
        with open_raw_upload(server, admin.token, boundary=boundary, headers=headers) as sock:
            if not expect_continue:
                sock.sendall(form_head(boundary, {}, "huge.csv") + b"a,b\n1,2\n")
            status, body = read_raw_response(sock)
        elapsed = time.monotonic() - started
        assert (status, body["code"]) == (413, "file_too_large"), body
        assert body["detail"]
        assert elapsed < 3, f"413 took {elapsed:.1f}s: the server waited for the body"
        store.assert_nothing_new(before)

    def test_over_the_limit_without_content_length_is_413_while_still_sending(
        self, server: LiveServer, admin: Api, customer_id: int, store: StoreInspector
    ) -> None:
        # Chunked transfer: the size is only known while streaming, and the 413 must come as
        # soon as the limit is crossed, not after the client sent everything it meant to.
        before = store.snapshot()
        assert admin.token is not None
        boundary = uuid.uuid4().hex
        total = 1024 * MiB

        def chunked_body() -> Iterator[bytes]:
            head = form_head(boundary, {"customer_id": str(customer_id)}, "flood.csv")
            yield b"%x\r\n%s\r\n" % (len(head), head)
            block = csv_bytes(MiB)
            for _ in range(total // MiB):
                yield b"%x\r\n%s\r\n" % (len(block), block)

        headers = {"Transfer-Encoding": "chunked"}
        with open_raw_upload(server, admin.token, boundary=boundary, headers=headers) as sock:
            sent = send_until_answered(sock, chunked_body())
            status, body = read_raw_response(sock)
        assert (status, body["code"]) == (413, "file_too_large"), body
        assert sent < total // 4, f"the 413 came only after {sent / MiB:.0f} MiB"
        assert listed_ids(admin, customer_id) == []
        store.assert_nothing_new(before)


class TestStreaming:
    def test_11_mib_pdf_round_trips_byte_exact(
        self, admin: Api, customer_id: int, store: StoreInspector
    ) -> None:
        # Over 5 MiB: on S3 this goes through a multipart upload.
        content = pdf_bytes(11 * MiB)
        body = assert_created(admin.upload(content, "scan.pdf", customer_id=customer_id))
        assert body["file_size"] == len(content)
        assert body["mime_type"] == "application/pdf"
        assert body["sha256"] == hashlib.sha256(content).hexdigest()
        assert download(admin, body["id"]).content == content
        assert store.object_of(body["id"]) in store.objects()

    def test_content_resembling_the_boundary_is_stored_byte_exact(
        self, admin: Api, customer_id: int
    ) -> None:
        # The parser holds back anything that might be the start of the boundary; every
        # near-miss, also across network chunks, must reach the store unchanged.
        boundary = uuid.uuid4().hex
        near_misses = b"".join(
            b"\r\n--" + boundary[:n].encode() + b"x" for n in range(len(boundary))
        )
        pattern = near_misses + b"\r\n-\r\r\n--\r\n"
        content = b"%PDF-1.4\n" + pattern * (2 * MiB // len(pattern))
        body = multipart_body(
            [("customer_id", None, str(customer_id).encode()), ("file", "l.pdf", content)],
            boundary,
        )
        response = post_body(admin, body, f"multipart/form-data; boundary={boundary}")
        created = assert_created(response)
        assert created["sha256"] == hashlib.sha256(content).hexdigest()
        assert download(admin, created["id"]).content == content


class TestChecksum:
    def test_matching_checksum_is_201(self, admin: Api, customer_id: int) -> None:
        digest = hashlib.sha256(CSV).hexdigest()
        body = assert_created(
            admin.upload(CSV, "c.csv", customer_id=customer_id, checksum_sha256=digest)
        )
        assert body["sha256"] == digest

    def test_upper_case_checksum_is_accepted(self, admin: Api, customer_id: int) -> None:
        digest = hashlib.sha256(CSV).hexdigest()
        assert_created(
            admin.upload(CSV, "c.csv", customer_id=customer_id, checksum_sha256=digest.upper())
        )

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_mismatch_is_422_and_nothing_stored(
        self, admin: Api, customer_id: int, store: StoreInspector, file_first: bool
    ) -> None:
        before = store.snapshot()
        wrong = hashlib.sha256(b"something else").hexdigest()
        response = admin.upload(
            CSV, "c.csv", customer_id=customer_id, checksum_sha256=wrong, file_first=file_first
        )
        assert_error(response, 422, "checksum_mismatch")
        assert listed_ids(admin, customer_id) == []
        store.assert_nothing_new(before)

    def test_large_mismatch_is_422_and_nothing_stored(
        self, admin: Api, customer_id: int, store: StoreInspector
    ) -> None:
        before = store.snapshot()
        # Big enough for a completed S3 multipart upload, which must then be deleted.
        wrong = hashlib.sha256(b"something else").hexdigest()
        response = admin.upload(
            pdf_bytes(9 * MiB), "s.pdf", customer_id=customer_id, checksum_sha256=wrong
        )
        assert_error(response, 422, "checksum_mismatch")
        store.assert_nothing_new(before)

    @pytest.mark.parametrize("checksum", ["abc", "g" * 64, "0" * 65])
    def test_malformed_checksum_is_422(
        self, admin: Api, customer_id: int, store: StoreInspector, checksum: str
    ) -> None:
        before = store.snapshot()
        response = admin.upload(CSV, "c.csv", customer_id=customer_id, checksum_sha256=checksum)
        assert_error(response, 422, "invalid_field")
        store.assert_nothing_new(before)


class TestFileType:
    @pytest.mark.parametrize(
        ("filename", "content"),
        [
            ("setup.exe", b"MZ\x90\x00" + random_bytes(256)),
            ("notes.txt", b"just some text\n"),
            ("README", b"just some text\n"),
        ],
    )
    def test_extension_not_allowed_is_415(
        self, admin: Api, store: StoreInspector, filename: str, content: bytes
    ) -> None:
        before = store.snapshot()
        response = admin.upload(content, filename)
        assert_error(response, 415, "file_type_not_allowed")
        store.assert_nothing_new(before)

    @pytest.mark.parametrize(
        ("filename", "content"),
        [
            ("photo.png", b"MZ\x90\x00\x03\x00\x00\x00" + random_bytes(512)),
            ("report.pdf", random_bytes(20_000)),
            ("table.csv", png_bytes()),
            ("table.csv", b"id,name\n1,\x00\x01\x02\x03binary\n"),
            ("photo.jpg", png_bytes()),
            ("letter.docx", pdf_bytes()),
        ],
        ids=["exe_as_png", "noise_as_pdf", "png_as_csv", "nul_in_csv", "png_as_jpg", "pdf_as_docx"],
    )
    def test_content_not_matching_extension_is_415(
        self, admin: Api, store: StoreInspector, filename: str, content: bytes
    ) -> None:
        before = store.snapshot()
        response = admin.upload(content, filename)
        assert_error(response, 415, "content_mismatch")
        store.assert_nothing_new(before)

    def test_large_executable_named_png_is_415(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        # Refused from its first bytes, before anything of its 3 MiB is stored.
        content = b"MZ\x90\x00" + random_bytes(3 * MiB)
        assert_error(admin.upload(content, "big.png"), 415, "content_mismatch")
        store.assert_nothing_new(before)

    def test_empty_file_is_422(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        assert_error(admin.upload(b"", "empty.csv"), 422, "empty_file")
        store.assert_nothing_new(before)

    @pytest.mark.parametrize(
        ("filename", "content", "mime_type"),
        [
            ("pixel.png", png_bytes(), "image/png"),
            ("photo.jpg", jpeg_bytes(), "image/jpeg"),
            ("photo.jpeg", jpeg_bytes(), "image/jpeg"),
            ("scan.pdf", pdf_bytes(), "application/pdf"),
            ("letter.docx", docx_bytes(), DOCX_MIME),
            ("customers.csv", CSV, "text/csv"),
            ("UPPER.PNG", png_bytes(), "image/png"),
        ],
    )
    def test_real_files_are_accepted_with_the_sniffed_type(
        self, admin: Api, customer_id: int, filename: str, content: bytes, mime_type: str
    ) -> None:
        body = assert_created(admin.upload(content, filename, customer_id=customer_id))
        assert body["mime_type"] == mime_type
        assert body["filename"] == filename
        got = download(admin, body["id"])
        assert got.content == content
        assert got.headers["content-type"].split(";")[0] == mime_type

    def test_client_content_type_claim_is_ignored(self, admin: Api, customer_id: int) -> None:
        response = admin.upload(
            png_bytes(), "pixel.png", content_type="text/html", customer_id=customer_id
        )
        body = assert_created(response)
        assert body["mime_type"] == "image/png"
        assert download(admin, body["id"]).headers["content-type"] == "image/png"


class TestFilenames:
    @pytest.mark.parametrize(
        ("sent", "stored"),
        [
            ("../../etc/passwd.csv", "passwd.csv"),
            ("..\\..\\windows\\win.ini.csv", "win.ini.csv"),
            ("/abs/path/data.csv", "data.csv"),
            ("отчёт 2024.csv", "отчёт 2024.csv"),
        ],
    )
    def test_name_is_sanitised(self, admin: Api, customer_id: int, sent: str, stored: str) -> None:
        body = assert_created(admin.upload(CSV, sent, customer_id=customer_id))
        assert body["filename"] == stored
        assert admin.get(f"/files/{body['id']}").json()["filename"] == stored

    def test_control_characters_are_removed(self, admin: Api, customer_id: int) -> None:
        body = assert_created(admin.upload(CSV, "re\x01po\x1brt\x7f.csv", customer_id=customer_id))
        name = body["filename"]
        assert not any(ord(ch) < 32 or ord(ch) == 127 for ch in name), repr(name)
        # Removed or replaced by "_": either way the readable part survives.
        assert name.replace("_", "") == "report.csv", repr(name)

    @pytest.mark.parametrize("stem", ["a" * 296, "я" * 296], ids=["ascii", "cyrillic"])
    def test_long_name_is_shortened_keeping_the_extension(
        self, admin: Api, customer_id: int, stem: str
    ) -> None:
        body = assert_created(admin.upload(CSV, stem + ".csv", customer_id=customer_id))
        name = body["filename"]
        assert name.endswith(".csv")
        assert len(name.encode()) <= 255
        assert name.removesuffix(".csv") == stem[: len(name) - 4]
        assert body["mime_type"] == "text/csv"

    def test_non_ascii_name_reaches_the_download(self, admin: Api, customer_id: int) -> None:
        name = "отчёт 2024.csv"
        body = assert_created(admin.upload(CSV, name, customer_id=customer_id))
        disposition = download(admin, body["id"]).headers["content-disposition"]
        assert f"filename*=UTF-8''{quote(name, safe='')}" in disposition


class TestFields:
    def test_metadata_object_is_stored_and_returned(self, admin: Api, customer_id: int) -> None:
        metadata = {"source": "manual_upload", "tags": ["a", "b"], "n": 3, "nested": {"ok": True}}
        body = assert_created(
            admin.upload(CSV, "m.csv", customer_id=customer_id, metadata=json.dumps(metadata))
        )
        assert body["metadata"] == metadata
        assert admin.get(f"/files/{body['id']}").json()["metadata"] == metadata

    def test_no_metadata_is_an_empty_object(self, admin: Api, customer_id: int) -> None:
        body = assert_created(admin.upload(CSV, "m.csv", customer_id=customer_id))
        assert body["metadata"] == {}

    @pytest.mark.parametrize("metadata", ["{not json", "[1, 2]", "42"])
    def test_metadata_that_is_not_a_json_object_is_422(
        self, admin: Api, store: StoreInspector, metadata: str
    ) -> None:
        before = store.snapshot()
        assert_error(admin.upload(CSV, "m.csv", metadata=metadata), 422, "invalid_metadata")
        store.assert_nothing_new(before)

    @pytest.mark.parametrize("suffix", ["Z", "+02:00", ""], ids=["Z", "+02:00", "naive"])
    def test_expires_at_is_stored(self, admin: Api, customer_id: int, suffix: str) -> None:
        # A date-time without an offset is taken as UTC.
        local = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
        offset = timedelta(hours=2) if suffix == "+02:00" else timedelta(0)
        sent = (local + offset).replace(tzinfo=None).isoformat() + suffix
        body = assert_created(admin.upload(CSV, "e.csv", customer_id=customer_id, expires_at=sent))
        assert parse_time(body["expires_at"]) == local
        assert parse_time(admin.get(f"/files/{body['id']}").json()["expires_at"]) == local

    @pytest.mark.parametrize(
        "expires_at",
        [
            (datetime.now(UTC) - timedelta(hours=1)).isoformat(),
            "tomorrow",
            "2030-13-45T99:00:00",
        ],
        ids=["an_hour_ago", "word", "impossible_date"],
    )
    def test_expires_at_in_the_past_or_malformed_is_422(
        self, admin: Api, store: StoreInspector, expires_at: str
    ) -> None:
        before = store.snapshot()
        assert_error(admin.upload(CSV, "e.csv", expires_at=expires_at), 422, "invalid_field")
        store.assert_nothing_new(before)

    def test_metadata_over_64_kib_is_422(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        metadata = json.dumps({"notes": "x" * (65 * 1024)})
        assert_error(admin.upload(CSV, "m.csv", metadata=metadata), 422, "field_too_long")
        store.assert_nothing_new(before)

    def test_unknown_field_is_422(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        detail = assert_error(admin.upload(CSV, "u.csv", colour="blue"), 422, "unknown_field")
        assert "colour" in detail
        store.assert_nothing_new(before)

    @pytest.mark.parametrize(
        "name", ["md5", "sha256", "file_size", "upload_status", "bucket", "uploaded_by"]
    )
    def test_server_owned_field_is_422(self, admin: Api, store: StoreInspector, name: str) -> None:
        before = store.snapshot()
        fields: dict[str, Any] = {name: "1"}
        response = admin.upload(CSV, "s.csv", **fields)
        assert name in assert_error(response, 422, "server_owned_field")
        store.assert_nothing_new(before)

    @pytest.mark.parametrize(
        ("name", "value"),
        [
            ("customer_id", "abc"),
            ("customer_id", "1.5"),
            ("customer_id", "-3"),
            ("customer_id", "0"),
            ("customer_id", "99999999999999999999999"),
            ("ticket_id", "abc"),
            ("service_id", "x1"),
        ],
    )
    def test_id_that_is_not_a_valid_id_is_422(
        self, admin: Api, store: StoreInspector, name: str, value: str
    ) -> None:
        before = store.snapshot()
        fields: dict[str, Any] = {name: value}
        response = admin.upload(CSV, "c.csv", **fields)
        assert name in assert_error(response, 422, "invalid_field")
        store.assert_nothing_new(before)

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_customer_that_does_not_exist_is_404_naming_it(
        self, admin: Api, store: StoreInspector, file_first: bool
    ) -> None:
        before = store.snapshot()
        response = admin.upload(CSV, "c.csv", customer_id=987654321, file_first=file_first)
        detail = assert_error(response, 404, "customer_not_found")
        assert "Customer" in detail
        assert "987654321" in detail
        store.assert_nothing_new(before)

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_ticket_that_does_not_exist_is_404_naming_it(
        self, admin: Api, store: StoreInspector, file_first: bool
    ) -> None:
        before = store.snapshot()
        response = admin.upload(CSV, "c.csv", ticket_id=987654321, file_first=file_first)
        detail = assert_error(response, 404, "ticket_not_found")
        assert "Ticket" in detail
        assert "987654321" in detail
        store.assert_nothing_new(before)

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_ticket_of_another_customer_is_422(
        self, admin: Api, customer_id: int, store: StoreInspector, file_first: bool
    ) -> None:
        before = store.snapshot()
        other = admin.new_customer()["id"]
        ticket = admin.new_ticket(other)["id"]
        response = admin.upload(
            CSV, "c.csv", customer_id=customer_id, ticket_id=ticket, file_first=file_first
        )
        assert_error(response, 422, "ticket_customer_mismatch")
        store.assert_nothing_new(before)

    def test_field_given_twice_is_422(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        parts: list[Part] = [
            ("file_type", None, b"csv"),
            ("file_type", None, b"image"),
            ("file", "c.csv", CSV),
        ]
        assert_error(post_parts(admin, parts), 422, "duplicate_field")
        store.assert_nothing_new(before)


class TestFormShape:
    def test_no_file_part_is_422(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        response = post_parts(admin, [("file_type", None, b"csv")])
        assert_error(response, 422, "file_required")
        store.assert_nothing_new(before)

    def test_empty_form_is_422(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        assert_error(post_parts(admin, []), 422, "file_required")
        store.assert_nothing_new(before)

    def test_two_files_are_422_and_the_first_is_not_kept(
        self, admin: Api, store: StoreInspector
    ) -> None:
        before = store.snapshot()
        parts: list[Part] = [("file", "a.csv", CSV), ("file", "b.csv", CSV)]
        assert_error(post_parts(admin, parts), 422, "duplicate_field")
        store.assert_nothing_new(before)

    def test_file_in_another_field_is_422(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        response = post_parts(admin, [("document", "a.csv", CSV)])
        assert_error(response, 422, "invalid_field")
        store.assert_nothing_new(before)

    def test_json_body_is_415(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        response = admin.post("/files/upload", json={"file": "aGVsbG8=", "filename": "a.csv"})
        assert_error(response, 415, "multipart_required")
        store.assert_nothing_new(before)

    def test_urlencoded_body_is_415(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        response = admin.post("/files/upload", data={"file_type": "csv"})
        assert_error(response, 415, "multipart_required")
        store.assert_nothing_new(before)

    def test_multipart_without_boundary_is_400(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        response = post_body(admin, b"whatever", "multipart/form-data")
        assert_error(response, 400, "invalid_multipart")
        store.assert_nothing_new(before)

    def test_body_that_is_not_multipart_is_400(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        body = b"this is not multipart at all\r\n" * 10
        response = post_body(admin, body, "multipart/form-data; boundary=abc123")
        assert_error(response, 400, "invalid_multipart")
        store.assert_nothing_new(before)

    def test_part_without_name_is_400(self, admin: Api, store: StoreInspector) -> None:
        before = store.snapshot()
        body = b"--b0\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b0--\r\n"
        response = post_body(admin, body, "multipart/form-data; boundary=b0")
        assert_error(response, 400, "invalid_multipart")
        store.assert_nothing_new(before)

    @pytest.mark.parametrize("size", [100, 10 * MiB], ids=["small", "10MiB"])
    def test_truncated_body_is_400_and_nothing_stored(
        self, admin: Api, store: StoreInspector, size: int
    ) -> None:
        before = store.snapshot()
        boundary = uuid.uuid4().hex
        full = multipart_body([("file", "t.pdf", pdf_bytes(size))], boundary)
        cut = full[: len(full) - 50]  # inside the file: the closing boundary never comes
        response = post_body(admin, cut, f"multipart/form-data; boundary={boundary}")
        assert_error(response, 400, "incomplete_multipart")
        store.assert_nothing_new(before)


class TestBuckets:
    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_ticket_goes_to_ticket_media_owned_by_the_tickets_customer(
        self, admin: Api, customer_id: int, store: StoreInspector, file_first: bool
    ) -> None:
        ticket = admin.new_ticket(customer_id)["id"]
        before = store.snapshot()
        body = assert_created(
            admin.upload(png_bytes(), "shot.png", ticket_id=ticket, file_first=file_first)
        )
        assert (body["bucket"], body["customer_id"], body["ticket_id"]) == (
            "ticket-media",
            customer_id,
            ticket,
        )
        self.assert_only_object_in(store, before, body, "ticket-media")
        assert download(admin, body["id"]).content == png_bytes()
        assert [f["id"] for f in admin.get(f"/files/ticket/{ticket}").json()] == [body["id"]]
        assert listed_ids(admin, customer_id) == [body["id"]]

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_csv_goes_to_csv_imports(
        self, admin: Api, customer_id: int, store: StoreInspector, file_first: bool
    ) -> None:
        before = store.snapshot()
        body = assert_created(
            admin.upload(
                CSV, "c.csv", file_type="csv", customer_id=customer_id, file_first=file_first
            )
        )
        assert (body["bucket"], body["file_type"]) == ("csv-imports", "csv")
        self.assert_only_object_in(store, before, body, "csv-imports")
        assert download(admin, body["id"]).content == CSV

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_file_type_csv_needs_a_csv_file(
        self, admin: Api, store: StoreInspector, file_first: bool
    ) -> None:
        before = store.snapshot()
        response = admin.upload(png_bytes(), "p.png", file_type="csv", file_first=file_first)
        assert_error(response, 422, "invalid_field")
        store.assert_nothing_new(before)

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_backup_goes_to_backups_for_admin(
        self, admin: Api, store: StoreInspector, file_first: bool
    ) -> None:
        before = store.snapshot()
        body = assert_created(
            admin.upload(pdf_bytes(), "dump.pdf", file_type="backup", file_first=file_first)
        )
        assert (body["bucket"], body["file_type"]) == ("backups", "backup")
        self.assert_only_object_in(store, before, body, "backups")
        assert download(admin, body["id"]).content == pdf_bytes()

    @pytest.mark.parametrize(
        ("role", "file_first"), [("staff", False), ("staff", True), ("customer", True)]
    )
    def test_backup_is_403_for_staff_and_customers(
        self, admin: Api, customer_id: int, store: StoreInspector, role: str, file_first: bool
    ) -> None:
        before = store.snapshot()
        user = admin.user_api(role, customer_id if role == "customer" else None)
        response = user.upload(pdf_bytes(), "dump.pdf", file_type="backup", file_first=file_first)
        assert_error(response, 403, "forbidden_backup")
        store.assert_nothing_new(before)

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_temp_goes_to_temp_and_expires_in_24_hours(
        self, admin: Api, customer_id: int, store: StoreInspector, file_first: bool
    ) -> None:
        before = store.snapshot()
        body = assert_created(
            admin.upload(
                CSV, "t.csv", file_type="temp", customer_id=customer_id, file_first=file_first
            )
        )
        assert body["bucket"] == "temp"
        expected = datetime.now(UTC) + timedelta(hours=24)
        assert abs(parse_time(body["expires_at"]) - expected) < timedelta(minutes=1)
        self.assert_only_object_in(store, before, body, "temp")
        assert download(admin, body["id"]).content == CSV

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_temp_keeps_a_given_expiry(
        self, admin: Api, customer_id: int, file_first: bool
    ) -> None:
        expires = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=2)
        body = assert_created(
            admin.upload(
                CSV,
                "t.csv",
                file_type="temp",
                customer_id=customer_id,
                expires_at=expires.isoformat(),
                file_first=file_first,
            )
        )
        assert body["bucket"] == "temp"
        assert parse_time(body["expires_at"]) == expires

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    @pytest.mark.parametrize("file_type", [None, "image", "invoice_2024"])
    def test_anything_else_goes_to_customer_uploads(
        self,
        admin: Api,
        customer_id: int,
        store: StoreInspector,
        file_type: str | None,
        file_first: bool,
    ) -> None:
        before = store.snapshot()
        body = assert_created(
            admin.upload(
                png_bytes(),
                "p.png",
                file_type=file_type,
                customer_id=customer_id,
                file_first=file_first,
            )
        )
        assert body["bucket"] == "customer-uploads"
        assert body["file_type"] == (file_type or "document")
        assert body["expires_at"] is None
        self.assert_only_object_in(store, before, body, "customer-uploads")

    def test_file_type_is_normalised(self, admin: Api, customer_id: int) -> None:
        response = admin.upload(CSV, "c.csv", file_type=" CSV ", customer_id=customer_id)
        body = assert_created(response)
        assert (body["bucket"], body["file_type"]) == ("csv-imports", "csv")

    @pytest.mark.parametrize("file_type", ["../backups", "x" * 65])
    def test_odd_file_type_is_422(self, admin: Api, store: StoreInspector, file_type: str) -> None:
        before = store.snapshot()
        assert_error(admin.upload(CSV, "c.csv", file_type=file_type), 422, "invalid_field")
        store.assert_nothing_new(before)

    def test_large_file_sent_first_is_moved_intact(
        self, admin: Api, customer_id: int, store: StoreInspector
    ) -> None:
        # Fields after an 11 MiB file: the multipart-uploaded object is moved to ticket-media.
        ticket = admin.new_ticket(customer_id)["id"]
        content = pdf_bytes(11 * MiB)
        before = store.snapshot()
        body = assert_created(
            admin.upload(content, "big.pdf", ticket_id=ticket, file_type="temp", file_first=True)
        )
        assert body["bucket"] == "ticket-media"
        self.assert_only_object_in(store, before, body, "ticket-media")
        assert download(admin, body["id"]).content == content

    @staticmethod
    def assert_only_object_in(
        store: StoreInspector, before: StoreSnapshot, body: dict[str, Any], bucket: str
    ) -> None:
        """Exactly one new object, in `bucket`, the one the row points at; no upload pending."""
        added = store.new_since(before)
        location = store.object_of(body["id"])
        assert location.startswith(f"{bucket}/")
        assert added.objects == {location}, added
        assert not added.multipart_uploads
        assert added.rows == 1


class TestResponse:
    def test_response_has_every_field(self, admin: Api, customer_id: int) -> None:
        content = png_bytes()
        metadata = {"source": "test"}
        started = datetime.now(UTC)
        body = assert_created(
            admin.upload(
                content,
                "pixel.png",
                file_type="image",
                customer_id=customer_id,
                service_id=77,
                metadata=json.dumps(metadata),
            )
        )
        expected_fields = {
            "id",
            "filename",
            "file_size",
            "mime_type",
            "file_type",
            "upload_status",
            "url",
            "created_at",
            "md5",
            "sha256",
            "bucket",
            "customer_id",
            "ticket_id",
            "service_id",
            "metadata",
            "expires_at",
        }
        assert expected_fields <= body.keys()
        assert isinstance(body["id"], int)
        assert body["filename"] == "pixel.png"
        assert body["file_size"] == len(content)
        assert body["mime_type"] == "image/png"
        assert body["file_type"] == "image"
        assert body["upload_status"] == "completed"
        assert body["md5"] == hashlib.md5(content).hexdigest()
        assert body["sha256"] == hashlib.sha256(content).hexdigest()
        assert body["bucket"] == "customer-uploads"
        assert body["customer_id"] == customer_id
        assert body["ticket_id"] is None
        assert body["service_id"] == 77
        assert body["metadata"] == metadata
        assert body["expires_at"] is None
        created = parse_time(body["created_at"])
        assert created.tzinfo is not None
        assert abs(created - started) < timedelta(minutes=1)
        # GET /files/{id} says the same.
        assert admin.get(f"/files/{body['id']}").json() == body

    def test_url_is_a_working_download_link(self, admin: Api, customer_id: int) -> None:
        content = pdf_bytes(70_000)
        body = assert_created(admin.upload(content, "doc.pdf", customer_id=customer_id))
        url = body["url"]
        assert url.startswith(("http://", "https://"))
        got = httpx.get(url, headers={"Authorization": f"Bearer {admin.token}"}, timeout=30)
        assert got.status_code == 200, got.text
        assert got.content == content
        assert httpx.get(url, timeout=30).status_code == 401

    def test_new_file_is_listed_newest_first(self, admin: Api, customer_id: int) -> None:
        first = assert_created(admin.upload(CSV, "1.csv", customer_id=customer_id))
        second = assert_created(admin.upload(CSV, "2.csv", customer_id=customer_id))
        assert listed_ids(admin, customer_id) == [second["id"], first["id"]]


class TestClientDisconnect:
    def test_disconnect_mid_upload_leaves_nothing(
        self, server: LiveServer, admin: Api, customer_id: int, store: StoreInspector
    ) -> None:
        assert admin.token is not None
        before = store.snapshot()
        boundary = uuid.uuid4().hex
        head = form_head(boundary, {"customer_id": str(customer_id)}, "d.pdf")
        headers = {"Content-Length": str(len(head) + 11 * MiB + 100)}
        with open_raw_upload(server, admin.token, boundary=boundary, headers=headers) as sock:
            sock.sendall(head)
            content = pdf_bytes(10 * MiB)
            for offset in range(0, len(content), MiB):
                sock.sendall(content[offset : offset + MiB])
            # Wait until the server is writing the object (S3: a multipart upload is open), so
            # the disconnect really interrupts a store write.
            started = poll(
                lambda: store.new_since(before),
                lambda added: bool(added.objects or added.multipart_uploads),
                timeout=5,
            )
            assert started.objects or started.multipart_uploads, "the upload never began"
            # Its row is `uploading` meanwhile: never listed.
            assert listed_ids(admin, customer_id) == []
        store.assert_nothing_new(before, wait=5)
        assert listed_ids(admin, customer_id) == []

    def test_disconnect_in_the_first_bytes_leaves_nothing_and_server_goes_on(
        self, server: LiveServer, admin: Api, customer_id: int, store: StoreInspector
    ) -> None:
        assert admin.token is not None
        before = store.snapshot()
        boundary = uuid.uuid4().hex
        head = form_head(boundary, {"customer_id": str(customer_id)}, "x.csv")
        headers = {"Content-Length": str(8 * MiB)}
        with open_raw_upload(server, admin.token, boundary=boundary, headers=headers) as sock:
            sock.sendall(head + csv_bytes(1000))
        store.assert_nothing_new(before, wait=5)
        assert_created(admin.upload(CSV, "after.csv", customer_id=customer_id))


class TestUploadAccess:
    def test_customer_uploads_for_itself_by_default(
        self, customer_api: Api, customer_id: int
    ) -> None:
        body = assert_created(customer_api.upload(CSV, "mine.csv"))
        assert body["customer_id"] == customer_id
        assert listed_ids(customer_api, customer_id) == [body["id"]]
        assert download(customer_api, body["id"]).content == CSV

    def test_customer_uploads_with_its_own_id(self, customer_api: Api, customer_id: int) -> None:
        body = assert_created(customer_api.upload(CSV, "mine.csv", customer_id=customer_id))
        assert body["customer_id"] == customer_id

    def test_customer_uploads_to_its_own_ticket(
        self, admin: Api, customer_api: Api, customer_id: int
    ) -> None:
        ticket = admin.new_ticket(customer_id)["id"]
        body = assert_created(customer_api.upload(png_bytes(), "s.png", ticket_id=ticket))
        assert (body["customer_id"], body["bucket"]) == (customer_id, "ticket-media")

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_customer_cannot_upload_for_another_customer(
        self, admin: Api, customer_api: Api, store: StoreInspector, file_first: bool
    ) -> None:
        before = store.snapshot()
        other = admin.new_customer()["id"]
        response = customer_api.upload(CSV, "x.csv", customer_id=other, file_first=file_first)
        assert_error(response, 404, "customer_not_found")
        assert listed_ids(admin, other) == []
        store.assert_nothing_new(before)

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields_first", "file_first"])
    def test_customer_cannot_upload_to_another_customers_ticket(
        self, admin: Api, customer_api: Api, store: StoreInspector, file_first: bool
    ) -> None:
        before = store.snapshot()
        other = admin.new_customer()["id"]
        ticket = admin.new_ticket(other)["id"]
        response = customer_api.upload(CSV, "x.csv", ticket_id=ticket, file_first=file_first)
        assert_error(response, 404, "ticket_not_found")
        store.assert_nothing_new(before)

    def test_staff_uploads_for_any_customer(self, staff: Api, admin: Api, customer_id: int) -> None:
        other = admin.new_customer()["id"]
        for target in (customer_id, other):
            body = assert_created(staff.upload(CSV, "s.csv", customer_id=target))
            assert body["customer_id"] == target
            assert listed_ids(staff, target) == [body["id"]]

    def test_staff_upload_without_customer_has_no_owner(self, staff: Api) -> None:
        body = assert_created(staff.upload(CSV, "s.csv"))
        assert body["customer_id"] is None
        assert download(staff, body["id"]).content == CSV

    def test_no_token_is_401(self, server: LiveServer, store: StoreInspector) -> None:
        before = store.snapshot()
        response = server.api().upload(CSV, "x.csv")
        assert_error(response, 401, "not_authenticated")
        store.assert_nothing_new(before)
