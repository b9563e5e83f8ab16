"""A small tus 1.0.0 client for the tests: raw requests, so each header can be got wrong."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.fixtures.app import AsyncApi

TUS = {"Tus-Resumable": "1.0.0"}
OCTETS = {"Content-Type": "application/offset+octet-stream"}


def metadata_header(pairs: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" for k, v in pairs.items())


def checksum_header(algorithm: str, data: bytes) -> str:
    return f"{algorithm} {base64.b64encode(hashlib.new(algorithm, data).digest()).decode()}"


def csv_bytes(size: int) -> bytes:
    """`size` bytes of a plausible CSV (sniffs as text)."""
    row = b"1,alpha,beta,gamma,delta\n"
    return (b"id,a,b,c,d\n" + row * (size // len(row) + 1))[:size]


@dataclass
class Tus:
    api: AsyncApi

    async def create(
        self,
        length: int | None,
        metadata: dict[str, str] | None = None,
        *,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> httpx.Response:
        sent: dict[str, str] = dict(TUS)
        if length is None:
            sent["Upload-Defer-Length"] = "1"
        else:
            sent["Upload-Length"] = str(length)
        pairs = {"filename": "notes.csv"} if metadata is None else metadata
        if pairs:
            sent["Upload-Metadata"] = metadata_header(pairs)
        if body is not None:
            sent.update(OCTETS)
        sent.update(headers or {})
        return await self.api.post("/files/tus", headers=sent, content=body)

    async def new(self, length: int, metadata: dict[str, str] | None = None) -> str:
        """Create an upload; its path."""
        response = await self.create(length, metadata)
        assert response.status_code == 201, response.text
        return path_of(response)

    async def patch(
        self,
        path: str,
        offset: int,
        data: bytes | AsyncIterator[bytes],
        *,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        sent = {**TUS, **OCTETS, "Upload-Offset": str(offset), **(headers or {})}
        return await self.api.patch(path, headers=sent, content=data)

    async def head(self, path: str) -> httpx.Response:
        return await self.api.request("HEAD", path, headers=dict(TUS))

    async def offset(self, path: str) -> int:
        response = await self.head(path)
        assert response.status_code == 200, response.status_code
        return int(response.headers["Upload-Offset"])

    async def upload(
        self, data: bytes, metadata: dict[str, str] | None = None, *, chunk: int = 1 << 20
    ) -> dict[str, Any]:
        """A whole upload in chunks; the stored file's JSON."""
        path = await self.new(len(data), metadata)
        response: httpx.Response | None = None
        for start in range(0, len(data), chunk):
            response = await self.patch(path, start, data[start : start + chunk])
            assert response.status_code == 204, response.text
        assert response is not None
        file_id = response.headers["Filestore-File-Id"]
        got = await self.api.get(f"/files/{file_id}")
        assert got.status_code == 200, got.text
        result: dict[str, Any] = got.json()
        return result


def path_of(response: httpx.Response) -> str:
    location = response.headers["Location"]
    return "/files/tus/" + location.rsplit("/files/tus/", 1)[1]
