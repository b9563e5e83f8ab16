"""Direct uploads: a presigned PUT straight to the file's final key on S3, then `complete`
verifies the bytes and completes the row (the `pending` row is the quarantine)."""

from __future__ import annotations

import hashlib
import os
from typing import Any
from urllib.parse import urlsplit

import httpx

from tests.fixtures.app import AsyncApi
from tests.fixtures.inspect import StoreInspector
from tests.fixtures.live import Api, LiveServer
from tests.fixtures.servers import SeaweedFS

PDF = b"%PDF-1.4\n" + os.urandom(300_000) + b"\n%%EOF\n"


def declaration(content: bytes, filename: str = "scan.pdf", **fields: Any) -> dict[str, Any]:
    return {
        "filename": filename,
        "file_size": len(content),
        "sha256": hashlib.sha256(content).hexdigest(),
        **fields,
    }


def reserve(api: Api, content: bytes, **fields: Any) -> dict[str, Any]:
    response = api.post("/files/direct-uploads", json=declaration(content, **fields))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def put(reservation: dict[str, Any], content: bytes, **headers: str) -> httpx.Response:
    sent = {**reservation["headers"], **headers}
    return httpx.put(reservation["url"], content=content, headers=sent)


def complete(api: Api, reservation: dict[str, Any]) -> httpx.Response:
    return api.post(f"/files/direct-uploads/{reservation['upload_id']}/complete")


def file_ids(api: Api, customer_id: int) -> list[int]:
    return [file["id"] for file in api.get(f"/files/customer/{customer_id}").json()]


class TestDirectUpload:
    def test_bytes_put_to_the_store_become_a_file_once(self, s3_server: LiveServer) -> None:
        admin = s3_server.admin()
        customer_id = int(admin.new_customer()["id"])
        customer = admin.user_api("customer", customer_id)
        reservation = reserve(customer, PDF)
        assert reservation["method"] == "PUT"
        assert reservation["headers"]["Content-Length"] == str(len(PDF))
        assert file_ids(customer, customer_id) == []  # pending: not listed

        assert put(reservation, PDF).status_code == 200
        done = complete(customer, reservation)
        assert done.status_code == 201, done.text
        file = done.json()
        assert file["sha256"] == hashlib.sha256(PDF).hexdigest()
        # From the store's own checksum and ETag (no read-back), equal to what a read-back gives.
        assert file["md5"] == hashlib.md5(PDF).hexdigest()
        assert file["file_size"] == len(PDF)
        assert file["mime_type"] == "application/pdf"
        assert file["bucket"] == "customer-uploads"
        assert file["customer_id"] == customer_id
        assert customer.get(f"/files/download/{file['id']}").content == PDF

        again = complete(customer, reservation)
        assert again.status_code == 200
        assert again.json()["id"] == file["id"]
        assert file_ids(customer, customer_id) == [file["id"]]
        # Audited once, as the customer's upload, then the download.
        audited = admin.get("/audit-events", params={"file_id": file["id"]}).json()
        assert [e["action"] for e in audited] == ["file.downloaded", "file.uploaded"]
        assert audited[1]["details"]["via"] == "direct"
        assert audited[1]["customer_id"] == customer_id

    def test_bytes_land_at_the_final_key_and_stay_unreachable_until_completed(
        self, s3_server: LiveServer, seaweed: SeaweedFS
    ) -> None:
        store = StoreInspector(s3_server, seaweed)
        admin = s3_server.admin()
        customer_id = int(admin.new_customer()["id"])
        customer = admin.user_api("customer", customer_id)
        reservation = reserve(customer, PDF)
        signed = urlsplit(reservation["url"]).path.lstrip("/")  # `bucket/key`
        assert signed.startswith("customer-uploads/")
        before = store.objects()
        assert put(reservation, PDF).status_code == 200
        assert store.objects() - before == {signed}
        # The row is `pending`: the bytes exist, but no route lists, serves or links them.
        upload_id = reservation["upload_id"]
        for api in (customer, admin):
            for path in (
                f"/files/{upload_id}",
                f"/files/download/{upload_id}",
                f"/files/download/{upload_id}?redirect=true",
                f"/files/{upload_id}/download-url",
            ):
                response = api.get(path)
                assert response.status_code == 404, (path, response.text)
                assert response.json()["code"] == "file_not_found"
            assert upload_id not in file_ids(api, customer_id)

        done = complete(customer, reservation)
        assert done.status_code == 201, done.text
        assert done.json()["id"] == upload_id
        # Completed in place: no copy, nothing left anywhere else.
        assert store.objects() - before == {signed}
        assert f"{done.json()['bucket']}/" in signed
        link = customer.get(f"/files/{upload_id}/download-url").json()
        assert urlsplit(link["url"]).path.lstrip("/") == signed
        assert httpx.get(link["url"]).content == PDF

    def test_a_refused_upload_leaves_nothing_at_its_key(
        self, s3_server: LiveServer, seaweed: SeaweedFS
    ) -> None:
        store = StoreInspector(s3_server, seaweed)
        admin = s3_server.admin()
        fake = b"MZ\x90\x00" + os.urandom(5000)  # an executable named .pdf
        reservation = reserve(admin, fake, file_type="temp")
        signed = urlsplit(reservation["url"]).path.lstrip("/")
        assert put(reservation, fake).status_code == 200
        assert signed in store.objects()
        assert complete(admin, reservation).status_code == 422
        assert signed not in store.objects()
        assert admin.get(f"/files/download/{reservation['upload_id']}").status_code == 404

    def test_other_bytes_of_the_same_length_are_refused(self, s3_server: LiveServer) -> None:
        admin = s3_server.admin()
        customer_id = int(admin.new_customer()["id"])
        reservation = reserve(admin, PDF, customer_id=customer_id)
        forged = PDF[:-20] + b"X" * 20
        stored = put(reservation, forged)
        done = complete(admin, reservation)
        # The store may refuse the checksum itself; either way the file never exists.
        assert done.status_code == 422, done.text
        expected = "checksum_mismatch" if stored.status_code == 200 else "upload_missing"
        assert done.json()["code"] == expected
        assert file_ids(admin, customer_id) == []
        rejected = complete(admin, reservation)
        assert rejected.status_code == 409
        assert rejected.json()["code"] == "upload_rejected"

    def test_a_different_length_breaks_the_signature(self, s3_server: LiveServer) -> None:
        admin = s3_server.admin()
        reservation = reserve(admin, PDF, file_type="temp")
        longer = PDF + b"more"
        response = put(reservation, longer, **{"Content-Length": str(len(longer))})
        assert response.status_code == 403
        done = complete(admin, reservation)
        assert done.status_code == 422
        assert done.json()["code"] == "upload_missing"

    def test_content_that_is_not_what_the_extension_says_is_rejected(
        self, s3_server: LiveServer
    ) -> None:
        admin = s3_server.admin()
        fake = b"MZ\x90\x00" + os.urandom(5000)  # an executable named .pdf
        reservation = reserve(admin, fake, file_type="temp")
        assert put(reservation, fake).status_code == 200
        done = complete(admin, reservation)
        assert done.status_code == 422, done.text
        assert done.json()["code"] == "content_mismatch"

    def test_the_same_rules_as_a_multipart_upload_before_signing(
        self, s3_server: LiveServer
    ) -> None:
        admin = s3_server.admin()
        ours = int(admin.new_customer()["id"])
        theirs = int(admin.new_customer()["id"])
        customer = admin.user_api("customer", ours)
        cases = [
            (customer, declaration(PDF, customer_id=theirs), 404),
            (customer, declaration(PDF, file_type="backup"), 403),
            (admin, declaration(PDF, filename="tool.exe"), 415),
            (admin, {**declaration(PDF), "file_size": 10**9}, 413),
            (admin, declaration(PDF, filename="a\x00.pdf"), 422),
            (admin, declaration(PDF, customer_id=2**63), 422),
        ]
        for api, body, expected in cases:
            response = api.post("/files/direct-uploads", json=body)
            assert response.status_code == expected, (body, response.text)
            assert response.json()["code"]
            assert "url" not in response.json()

    def test_someone_else_cannot_complete_my_upload(self, s3_server: LiveServer) -> None:
        admin = s3_server.admin()
        customer_id = int(admin.new_customer()["id"])
        mine = admin.user_api("customer", customer_id)
        other = admin.user_api("staff")  # may see the customer, did not reserve the upload
        reservation = reserve(mine, PDF)
        assert put(reservation, PDF).status_code == 200
        assert complete(other, reservation).status_code == 404
        assert complete(mine, reservation).status_code == 201


async def test_the_local_store_says_to_use_the_form(admin_client: AsyncApi) -> None:
    response = await admin_client.post("/files/direct-uploads", json=declaration(PDF))
    assert response.status_code == 409
    assert response.json()["code"] == "direct_uploads_unavailable"
