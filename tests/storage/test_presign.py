"""SigV4 query presigning against AWS's published example, and what the signature binds."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

from filestore.storage.presign import Credentials, presign

AWS_EXAMPLE = Credentials(
    access_key="AKIAIOSFODNN7EXAMPLE",
    secret_key="wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    region="us-east-1",
)
NOW = datetime(2013, 5, 24, tzinfo=UTC)


def signature(url: str) -> str:
    return parse_qs(urlsplit(url).query)["X-Amz-Signature"][0]


def test_matches_the_aws_documentation_example() -> None:
    # "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)", example GET.
    url = presign(
        "GET",
        base_url="https://examplebucket.s3.amazonaws.com",
        path="/test.txt",
        credentials=AWS_EXAMPLE,
        now=NOW,
        expires=timedelta(seconds=86400),
    )
    assert signature(url) == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    query = parse_qs(urlsplit(url).query)
    assert query["X-Amz-SignedHeaders"] == ["host"]
    assert query["X-Amz-Credential"] == ["AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request"]


def test_each_bound_header_changes_the_signature() -> None:
    def signed(**headers: str) -> str:
        return signature(
            presign(
                "PUT",
                base_url="http://127.0.0.1:9000",
                path="/temp/quarantine/abc",
                credentials=AWS_EXAMPLE,
                now=NOW,
                expires=timedelta(minutes=15),
                headers=headers,
            )
        )

    base = signed(**{"Content-Length": "10", "If-None-Match": "*"})
    assert signed(**{"Content-Length": "11", "If-None-Match": "*"}) != base
    assert signed(**{"Content-Length": "10"}) != base
    assert signed(**{"content-length": "10", "if-none-match": " * "}) == base


def test_keys_are_encoded_once_and_slashes_kept() -> None:
    url = presign(
        "GET",
        base_url="http://s3.local:9000",
        path="/bucket/customers/1/a b+c.pdf",
        credentials=AWS_EXAMPLE,
        now=NOW,
        expires=timedelta(minutes=5),
    )
    assert urlsplit(url).path == "/bucket/customers/1/a%20b%2Bc.pdf"


def test_operation_parameters_are_in_the_url_and_signed() -> None:
    # A resumable upload's parts: UploadPart is `PUT /bucket/key?partNumber=N&uploadId=ID`.
    def part_url(number: int, upload_id: str) -> str:
        return presign(
            "PUT",
            base_url="http://127.0.0.1:9000",
            path="/customer-uploads/1/2026/12/abc",
            credentials=AWS_EXAMPLE,
            now=NOW,
            expires=timedelta(minutes=15),
            query={"partNumber": str(number), "uploadId": upload_id},
        )

    url = part_url(3, "a/b+c=")
    query = parse_qs(urlsplit(url).query)
    assert query["partNumber"] == ["3"]
    assert query["uploadId"] == ["a/b+c="]
    assert "uploadId=a%2Fb%2Bc%3D" in url  # encoded once, as in the canonical query
    assert signature(part_url(4, "a/b+c=")) != signature(url)
    assert signature(part_url(3, "other")) != signature(url)
