"""Reading files back from a live server: download headers, HTTP ranges, conditional requests,
metadata, listings, deletion and expiry. Every test runs against S3 (SeaweedFS) and the local
store (the `server` fixture is parametrised over both).
"""

from __future__ import annotations

import hashlib
import os
import re
import struct
import time
import zlib
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote

import httpx
import psycopg
import pytest

from filestore.db import libpq_url
from tests.fixtures.inspect import StoreInspector
from tests.fixtures.live import Api, LiveServer
from tests.fixtures.servers import SeaweedFS

MIB = 1024 * 1024


# -- helpers ------------------------------------------------------------------------------------


def png_bytes() -> bytes:
    """A valid 1x1 PNG."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def pdf_bytes(size: int) -> bytes:
    """`size` bytes that start like a PDF and are random after that."""
    head = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n"
    return head + os.urandom(size - len(head))


CSV = b"full_name,email\nJane Roe,jane@example.com\n"


@dataclass(frozen=True)
class Disposition:
    kind: str
    filename: str | None
    filename_star: str | None  # decoded from RFC 5987 percent-encoding


def disposition(response: httpx.Response) -> Disposition:
    value = response.headers["content-disposition"]
    kind = value.split(";", 1)[0].strip().lower()
    plain = re.search(r'(?:^|;)\s*filename="([^"]*)"', value)
    extended = re.search(r"(?:^|;)\s*filename\*=UTF-8''([^;\s]+)", value, re.IGNORECASE)
    return Disposition(
        kind=kind,
        filename=plain.group(1) if plain else None,
        filename_star=unquote(extended.group(1), errors="strict") if extended else None,
    )


def etag(content: bytes) -> str:
    return f'"{hashlib.sha256(content).hexdigest()}"'


def uploaded(api: Api, content: bytes, filename: str, **fields: Any) -> int:
    response = api.upload(content, filename, **fields)
    assert response.status_code == 201, response.text
    file_id: int = response.json()["id"]
    return file_id


def assert_json_error(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert isinstance(response.json()["code"], str)


def row_state(server: LiveServer, file_id: int) -> tuple[str, datetime | None]:
    """(upload_status, deleted_at) of a `file_uploads` row, read from the database."""
    with psycopg.connect(libpq_url(server.env["DATABASE_URL"])) as conn:
        row = conn.execute(
            "SELECT upload_status::text, deleted_at FROM file_uploads WHERE id = %s", (file_id,)
        ).fetchone()
    assert row is not None, f"no file_uploads row {file_id}"
    status: str = row[0]
    deleted_at: datetime | None = row[1]
    return status, deleted_at


# -- a file bigger than one download chunk (1 MiB), shared by the range tests -------------------


@dataclass(frozen=True)
class BigFile:
    id: int
    content: bytes

    @property
    def size(self) -> int:
        return len(self.content)

    @property
    def url(self) -> str:
        return f"/files/download/{self.id}"


@pytest.fixture(scope="module")
def big_file(server: LiveServer) -> BigFile:
    admin = server.admin()
    customer = admin.new_customer()
    content = pdf_bytes(3 * MIB + 12_345)
    return BigFile(uploaded(admin, content, "contract.pdf", customer_id=customer["id"]), content)


# -- download -----------------------------------------------------------------------------------


class TestDownloadHeaders:
    def test_png_sent_as_text_html_is_served_as_image_png(
        self, admin: Api, customer_id: int
    ) -> None:
        content = png_bytes()
        response = admin.upload(
            content, "photo.png", content_type="text/html", customer_id=customer_id
        )
        assert response.status_code == 201, response.text
        download = admin.get(f"/files/download/{response.json()['id']}")
        assert download.status_code == 200
        assert download.content == content
        assert download.headers["content-type"] == "image/png"
        assert download.headers["content-length"] == str(len(content))
        assert download.headers["etag"] == etag(content)
        assert download.headers["accept-ranges"] == "bytes"
        assert download.headers["x-content-type-options"] == "nosniff"

    def test_ascii_name_is_an_attachment_with_that_name(self, admin: Api, customer_id: int) -> None:
        file_id = uploaded(admin, CSV, "report-2024.csv", customer_id=customer_id)
        found = disposition(admin.get(f"/files/download/{file_id}"))
        assert found.kind == "attachment"
        assert found.filename == "report-2024.csv"
        assert found.filename_star in (None, "report-2024.csv")

    @pytest.mark.parametrize("filename", ["Überweisung März.pdf", "отчёт.csv", "報告 書.csv"])
    def test_non_ascii_name_round_trips_through_rfc_6266(
        self, admin: Api, customer_id: int, filename: str
    ) -> None:
        content = pdf_bytes(2048) if filename.endswith(".pdf") else CSV
        file_id = uploaded(admin, content, filename, customer_id=customer_id)
        assert admin.get(f"/files/{file_id}").json()["filename"] == filename
        download = admin.get(f"/files/download/{file_id}")
        assert download.status_code == 200
        assert download.content == content
        found = disposition(download)
        assert found.kind == "attachment"
        assert found.filename_star == filename
        # The fallback for old clients is plain ASCII and keeps the extension.
        assert found.filename is not None
        assert found.filename.isascii()
        assert found.filename.endswith(filename.rsplit(".", 1)[1])


class TestDownloadInline:
    @pytest.mark.parametrize("filename", ["photo.png", "invoice.pdf"])
    def test_safe_types_are_shown_inline(self, admin: Api, customer_id: int, filename: str) -> None:
        content = png_bytes() if filename.endswith(".png") else pdf_bytes(4096)
        file_id = uploaded(admin, content, filename, customer_id=customer_id)
        inline = admin.get(f"/files/download/{file_id}", params={"inline": "true"})
        assert inline.status_code == 200
        assert inline.content == content
        assert disposition(inline) == Disposition("inline", filename, None)
        default = admin.get(f"/files/download/{file_id}")
        assert disposition(default).kind == "attachment"

    def test_csv_stays_an_attachment(self, admin: Api, customer_id: int) -> None:
        file_id = uploaded(admin, CSV, "customers.csv", customer_id=customer_id)
        response = admin.get(f"/files/download/{file_id}", params={"inline": "true"})
        assert response.status_code == 200
        assert disposition(response).kind == "attachment"
        assert response.headers["x-content-type-options"] == "nosniff"


class TestDownloadRange:
    def test_whole_file_without_range(self, admin: Api, big_file: BigFile) -> None:
        response = admin.get(big_file.url)
        assert response.status_code == 200
        assert response.headers["content-length"] == str(big_file.size)
        assert response.headers["content-type"] == "application/pdf"
        assert "content-range" not in response.headers
        assert response.content == big_file.content

    @pytest.mark.parametrize(
        ("first", "last"),
        [
            (0, 9),
            (0, 0),
            (MIB - 10, MIB + 9),  # spans the first chunk boundary
            (MIB, 2 * MIB - 1),  # exactly the second chunk
            (MIB - 1, 2 * MIB),  # one byte either side of a whole chunk
            (12_345, 3 * MIB + 100),
        ],
    )
    def test_closed_range(self, admin: Api, big_file: BigFile, first: int, last: int) -> None:
        response = admin.get(big_file.url, headers={"Range": f"bytes={first}-{last}"})
        assert response.status_code == 206, response.text
        assert response.headers["content-range"] == f"bytes {first}-{last}/{big_file.size}"
        assert response.headers["content-length"] == str(last - first + 1)
        assert response.headers["etag"] == etag(big_file.content)
        assert response.content == big_file.content[first : last + 1]

    def test_open_range_runs_to_the_end(self, admin: Api, big_file: BigFile) -> None:
        response = admin.get(big_file.url, headers={"Range": "bytes=5-"})
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes 5-{big_file.size - 1}/{big_file.size}"
        assert response.content == big_file.content[5:]

    @pytest.mark.parametrize("suffix", [7, MIB + 3])
    def test_suffix_range_is_the_last_bytes(
        self, admin: Api, big_file: BigFile, suffix: int
    ) -> None:
        response = admin.get(big_file.url, headers={"Range": f"bytes=-{suffix}"})
        assert response.status_code == 206
        size = big_file.size
        assert response.headers["content-range"] == f"bytes {size - suffix}-{size - 1}/{size}"
        assert response.content == big_file.content[-suffix:]

    def test_suffix_longer_than_the_file_is_the_whole_file(
        self, admin: Api, big_file: BigFile
    ) -> None:
        response = admin.get(big_file.url, headers={"Range": f"bytes=-{big_file.size + 50}"})
        assert response.status_code == 206
        size = big_file.size
        assert response.headers["content-range"] == f"bytes 0-{size - 1}/{size}"
        assert response.content == big_file.content

    def test_last_byte_past_the_end_is_clamped(self, admin: Api, big_file: BigFile) -> None:
        size = big_file.size
        response = admin.get(big_file.url, headers={"Range": f"bytes={size - 10}-{size + 1000}"})
        assert response.status_code == 206
        assert response.headers["content-range"] == f"bytes {size - 10}-{size - 1}/{size}"
        assert response.headers["content-length"] == "10"
        assert response.content == big_file.content[-10:]

    @pytest.mark.parametrize("make_range", ["{size}-", "{size}-{size}", "{over}-{far}", "-0"])
    def test_unsatisfiable_range_is_416(
        self, admin: Api, big_file: BigFile, make_range: str
    ) -> None:
        size = big_file.size
        spec = make_range.format(size=size, over=size + 10, far=size + 20)
        response = admin.get(big_file.url, headers={"Range": f"bytes={spec}"})
        assert_json_error(response, 416)
        assert response.json()["code"] == "range_not_satisfiable"
        assert response.headers["content-range"] == f"bytes */{size}"

    @pytest.mark.parametrize(
        "header", ["bytes=abc", "bytes=9-2", "bytes=0-1,4-5", "items=0-5", "bytes=-", "0-9"]
    )
    def test_malformed_range_is_ignored(self, admin: Api, big_file: BigFile, header: str) -> None:
        response = admin.get(big_file.url, headers={"Range": header})
        assert response.status_code == 200
        assert "content-range" not in response.headers
        assert response.content == big_file.content


class TestDownloadConditional:
    def test_if_none_match_with_the_etag_is_304(self, admin: Api, big_file: BigFile) -> None:
        tag = admin.get(big_file.url, headers={"Range": "bytes=0-0"}).headers["etag"]
        response = admin.get(big_file.url, headers={"If-None-Match": tag})
        assert response.status_code == 304
        assert response.content == b""
        assert response.headers["etag"] == tag

    def test_if_none_match_list_containing_the_etag_is_304(
        self, admin: Api, big_file: BigFile
    ) -> None:
        tag = etag(big_file.content)
        response = admin.get(big_file.url, headers={"If-None-Match": f'"other", {tag}'})
        assert response.status_code == 304

    def test_if_none_match_with_another_etag_is_200(self, admin: Api, big_file: BigFile) -> None:
        response = admin.get(big_file.url, headers={"If-None-Match": '"not-this-one"'})
        assert response.status_code == 200
        assert response.content == big_file.content

    def test_if_range_with_the_etag_gives_the_range(self, admin: Api, big_file: BigFile) -> None:
        headers = {"Range": "bytes=100-199", "If-Range": etag(big_file.content)}
        response = admin.get(big_file.url, headers=headers)
        assert response.status_code == 206
        assert response.content == big_file.content[100:200]

    def test_if_range_with_a_wrong_etag_gives_the_whole_file(
        self, admin: Api, big_file: BigFile
    ) -> None:
        headers = {"Range": "bytes=100-199", "If-Range": '"stale"'}
        response = admin.get(big_file.url, headers=headers)
        assert response.status_code == 200
        assert "content-range" not in response.headers
        assert response.content == big_file.content


# -- metadata and listings ----------------------------------------------------------------------


class TestMetadata:
    def test_metadata_describes_the_upload(self, admin: Api, customer_id: int) -> None:
        content = png_bytes()
        upload = admin.upload(
            content, "photo.png", customer_id=customer_id, metadata='{"source": "test"}'
        ).json()
        response = admin.get(f"/files/{upload['id']}")
        assert response.status_code == 200
        body = response.json()
        assert body == upload
        assert body["filename"] == "photo.png"
        assert body["file_size"] == len(content)
        assert body["mime_type"] == "image/png"
        assert body["sha256"] == hashlib.sha256(content).hexdigest()
        assert body["md5"] == hashlib.md5(content, usedforsecurity=False).hexdigest()
        assert body["customer_id"] == customer_id
        assert body["metadata"] == {"source": "test"}
        assert body["upload_status"] == "completed"
        assert body["url"].endswith(f"/files/download/{upload['id']}")


class TestListing:
    @pytest.fixture
    def three_files(self, admin: Api, customer_id: int) -> tuple[int, list[int]]:
        """(ticket id, ids of three files of `customer_id` on that ticket, oldest first)."""
        ticket_id = int(admin.new_ticket(customer_id)["id"])
        ids = [
            uploaded(admin, CSV, f"file-{n}.csv", customer_id=customer_id, ticket_id=ticket_id)
            for n in range(3)
        ]
        return ticket_id, ids

    @pytest.mark.parametrize("by", ["customer", "ticket"])
    def test_newest_first_and_paged(
        self, admin: Api, customer_id: int, three_files: tuple[int, list[int]], by: str
    ) -> None:
        ticket_id, ids = three_files
        url = f"/files/customer/{customer_id}" if by == "customer" else f"/files/ticket/{ticket_id}"
        newest_first = list(reversed(ids))

        everything = admin.get(url)
        assert everything.status_code == 200
        assert [f["id"] for f in everything.json()] == newest_first
        assert [f["filename"] for f in everything.json()] == [
            "file-2.csv",
            "file-1.csv",
            "file-0.csv",
        ]

        first_page = admin.get(url, params={"limit": 2})
        assert [f["id"] for f in first_page.json()] == newest_first[:2]
        second_page = admin.get(url, params={"limit": 2, "offset": 2})
        assert [f["id"] for f in second_page.json()] == newest_first[2:]
        past_the_end = admin.get(url, params={"limit": 2, "offset": 3})
        assert past_the_end.status_code == 200
        assert past_the_end.json() == []

    def test_only_that_customers_files(self, admin: Api, customer_id: int) -> None:
        mine = uploaded(admin, CSV, "mine.csv", customer_id=customer_id)
        other_customer = admin.new_customer()["id"]
        theirs = uploaded(admin, CSV, "theirs.csv", customer_id=other_customer)
        listed = [f["id"] for f in admin.get(f"/files/customer/{customer_id}").json()]
        assert listed == [mine]
        assert theirs not in listed

    @pytest.mark.parametrize("by", ["customer", "ticket"])
    @pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 501}, {"offset": -1}])
    def test_bad_paging_is_422(
        self, admin: Api, customer_id: int, by: str, params: dict[str, int]
    ) -> None:
        owner = customer_id if by == "customer" else admin.new_ticket(customer_id)["id"]
        response = admin.get(f"/files/{by}/{owner}", params=params)
        assert_json_error(response, 422)
        assert response.json()["code"] == "validation_error"

    @pytest.mark.parametrize("by", ["customer", "ticket"])
    def test_unknown_owner_is_404(self, admin: Api, by: str) -> None:
        response = admin.get(f"/files/{by}/{2**62}")
        assert_json_error(response, 404)


# -- deletion -----------------------------------------------------------------------------------


class TestDelete:
    def test_delete_removes_the_file_everywhere(
        self, server: LiveServer, seaweed: SeaweedFS, admin: Api, customer_id: int
    ) -> None:
        ticket_id = admin.new_ticket(customer_id)["id"]
        file_id = uploaded(admin, CSV, "gone.csv", customer_id=customer_id, ticket_id=ticket_id)
        kept = uploaded(admin, CSV, "kept.csv", customer_id=customer_id, ticket_id=ticket_id)
        store = StoreInspector(server, seaweed)
        stored_object = store.object_of(file_id)
        assert stored_object in store.objects()

        response = admin.delete(f"/files/{file_id}")
        assert response.status_code == 204
        assert response.content == b""

        assert_json_error(admin.get(f"/files/{file_id}"), 404)
        assert_json_error(admin.get(f"/files/download/{file_id}"), 404)
        for url in (f"/files/customer/{customer_id}", f"/files/ticket/{ticket_id}"):
            assert [f["id"] for f in admin.get(url).json()] == [kept]
        assert stored_object not in store.objects()
        assert store.object_of(kept) in store.objects()
        status, deleted_at = row_state(server, file_id)
        assert status == "deleted"
        assert deleted_at is not None
        assert abs(datetime.now(UTC) - deleted_at) < timedelta(minutes=1)

    def test_deleting_twice_is_404(self, admin: Api, customer_id: int) -> None:
        file_id = uploaded(admin, CSV, "twice.csv", customer_id=customer_id)
        assert admin.delete(f"/files/{file_id}").status_code == 204
        assert_json_error(admin.delete(f"/files/{file_id}"), 404)


# -- expiry -------------------------------------------------------------------------------------


class TestExpiry:
    def test_expired_file_is_404_before_any_sweep(self, admin: Api, customer_id: int) -> None:
        expires_at = datetime.now(UTC) + timedelta(seconds=2)
        file_id = uploaded(
            admin,
            CSV,
            "short-lived.csv",
            customer_id=customer_id,
            expires_at=expires_at.isoformat(),
        )
        assert admin.get(f"/files/{file_id}").status_code == 200
        assert admin.get(f"/files/download/{file_id}").content == CSV

        time.sleep(max(0.0, (expires_at - datetime.now(UTC)).total_seconds()) + 0.3)

        assert_json_error(admin.get(f"/files/{file_id}"), 404)
        assert_json_error(admin.get(f"/files/download/{file_id}"), 404)
        listed = [f["id"] for f in admin.get(f"/files/customer/{customer_id}").json()]
        assert file_id not in listed


# -- ids the server must refuse cleanly ---------------------------------------------------------


BAD_IDS = ["0", "-1", str(2**63), "abc", "1.5", str(10**30)]
ID_ROUTES = [
    ("GET", "/files/{}"),
    ("GET", "/files/download/{}"),
    ("DELETE", "/files/{}"),
    ("GET", "/files/customer/{}"),
    ("GET", "/files/ticket/{}"),
]


class TestBadIds:
    @pytest.mark.parametrize(("method", "route"), ID_ROUTES)
    @pytest.mark.parametrize("bad_id", BAD_IDS)
    def test_out_of_range_id_is_422(self, admin: Api, method: str, route: str, bad_id: str) -> None:
        response = admin.http.request(method, route.format(bad_id))
        assert_json_error(response, 422)
        assert response.json()["code"] == "validation_error"

    @pytest.mark.parametrize(("method", "route"), ID_ROUTES)
    def test_largest_bigint_is_a_plain_404(self, admin: Api, method: str, route: str) -> None:
        response = admin.http.request(method, route.format(2**63 - 1))
        assert_json_error(response, 404)
