"""tus against live servers on S3 (SeaweedFS): a real client (tuspy) whose connection is cut in
the middle of a chunk, and one upload spread over two API processes and a restart.

The files are 30 MiB rather than the issue's 100 MiB: the same code paths (six 5 MiB chunks,
several S3 parts, a tail object between requests) in a third of the suite's time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.files.tus.client import TUS, checksum_header, metadata_header
from tests.files.tus.conftest import CuttingProxy, MiB, random_csv
from tests.fixtures.live import LiveServer, start_server

BIG = 30 * MiB
CHUNK = 5 * MiB


def final_file_id(uploader: Any) -> str:
    """The file id the last PATCH's response named."""
    file_id: str = uploader.request.response_headers["filestore-file-id"]
    return file_id


class TestTuspy:
    def test_cut_mid_chunk_resumes_from_head_and_the_file_matches(
        self, tus_server: LiveServer, proxy: CuttingProxy, tmp_path: Path
    ) -> None:
        from tusclient import client as tus_client

        data = random_csv(BIG)
        path = tmp_path / "big.csv"
        path.write_bytes(data)
        admin = tus_server.admin()
        customer = admin.new_customer()
        client = tus_client.TusClient(
            f"http://127.0.0.1:{proxy.port}/files/tus",
            headers={"Authorization": f"Bearer {admin.token}"},
        )
        uploader = client.uploader(
            str(path),
            chunk_size=CHUNK,
            metadata={"filename": "big.csv", "customer_id": str(customer["id"])},
            retries=10,
            retry_delay=1,
        )
        resumed_at: list[int] = []
        head = uploader.get_offset

        def recording_head() -> int:
            offset = int(head())
            resumed_at.append(offset)
            return offset

        uploader.get_offset = recording_head
        uploader.upload_chunk()  # type: ignore[no-untyped-call]  # creates the upload, sends the first 5 MiB
        assert uploader.offset == CHUNK
        proxy.arm(CHUNK + CHUNK // 2)  # cut 2.5 MiB into the chunk after next
        uploader.upload()
        assert proxy.cuts == 1
        # The server kept what arrived before the cut: the client resumed inside a chunk.
        assert any(offset % CHUNK for offset in resumed_at), resumed_at
        file_id = final_file_id(uploader)
        stored = admin.get(f"/files/{file_id}").json()
        assert stored["sha256"] == hashlib.sha256(data).hexdigest()
        assert stored["file_size"] == BIG
        assert stored["customer_id"] == customer["id"]
        downloaded = admin.get(f"/files/download/{file_id}")
        assert hashlib.sha256(downloaded.content).hexdigest() == stored["sha256"]

    def test_checksum_per_chunk(self, tus_server: LiveServer, tmp_path: Path) -> None:
        from tusclient import client as tus_client

        data = random_csv(12 * MiB + 5)
        path = tmp_path / "sum.csv"
        path.write_bytes(data)
        admin = tus_server.admin()
        client = tus_client.TusClient(
            f"{tus_server.base_url}/files/tus",
            headers={"Authorization": f"Bearer {admin.token}"},
        )
        uploader = client.uploader(
            str(path), chunk_size=CHUNK, metadata={"filename": "sum.csv"}, upload_checksum=True
        )
        uploader.upload()
        file_id = final_file_id(uploader)
        assert admin.get(f"/files/{file_id}").json()["sha256"] == hashlib.sha256(data).hexdigest()


class TestAcrossProcesses:
    def test_chunks_alternate_between_two_processes_and_a_restart(
        self,
        tus_server: LiveServer,
        tus_env: dict[str, str],
        tmp_path_factory: pytest.TempPathFactory,
    ) -> None:
        """Uneven chunks (some smaller than a part, so tails carry over) sent to two API
        processes in turn, one of them restarted midway: the offsets live in PostgreSQL."""
        other = start_server(tmp_path_factory.mktemp("tus-second"), tus_env)
        try:
            admin = tus_server.admin()
            headers = {"Authorization": f"Bearer {admin.token}", **TUS}
            data = random_csv(23 * MiB + 11)
            created = httpx.post(
                f"{tus_server.base_url}/files/tus",
                headers={
                    **headers,
                    "Upload-Length": str(len(data)),
                    "Upload-Metadata": metadata_header({"filename": "spread.csv"}),
                },
            )
            assert created.status_code == 201, created.text
            upload_path = "/files/tus/" + created.headers["Location"].rsplit("/", 1)[1]
            sizes = [3 * MiB, 1 * MiB + 7, 7 * MiB, 2 * MiB, 6 * MiB]
            servers = [tus_server.base_url, other.base_url]
            offset = 0
            response: httpx.Response | None = None
            for index, size in enumerate([*sizes, len(data) - sum(sizes)]):
                if index == 3:
                    other.stop()
                    other = start_server(tmp_path_factory.mktemp("tus-second"), tus_env)
                    servers[1] = other.base_url
                base = servers[index % 2]
                head = httpx.head(f"{base}{upload_path}", headers=headers)
                assert int(head.headers["Upload-Offset"]) == offset
                chunk = data[offset : offset + size]
                response = httpx.patch(
                    f"{base}{upload_path}",
                    headers={
                        **headers,
                        "Content-Type": "application/offset+octet-stream",
                        "Upload-Offset": str(offset),
                        "Upload-Checksum": checksum_header("sha256", chunk),
                    },
                    content=chunk,
                    timeout=120,
                )
                assert response.status_code == 204, response.text
                offset += size
                assert int(response.headers["Upload-Offset"]) == offset
            assert response is not None
            file_id = response.headers["Filestore-File-Id"]
            stored = admin.get(f"/files/{file_id}").json()
            assert stored["sha256"] == hashlib.sha256(data).hexdigest()
            downloaded = admin.get(f"/files/download/{file_id}")
            assert downloaded.content == data
        finally:
            other.stop()
