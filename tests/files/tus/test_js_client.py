"""tus-js-client (the browser/Node client, run in Node) against a live server on S3: a 30 MiB
file in 5 MiB chunks with the connection cut mid-chunk, and in one PATCH (the client's default)
cut at about 40 %, resumed from HEAD. The client comes from npm (`tests/js`, installed by
`make test-deps`); without Node or npm these tests skip and say why. The same client speaking
the IETF draft (`protocol: "ietf-draft-05"`) is served on the same upload state."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import repo_root
from tests.files.tus.conftest import CuttingProxy, MiB, random_csv
from tests.fixtures.live import LiveServer

JS_DIR = repo_root() / "tests" / "js"
BIG = 30 * MiB
CHUNK = 5 * MiB


@pytest.fixture(scope="module")
def node() -> str:
    found = shutil.which("node")
    if found is None:
        pytest.skip("node is not installed: tus-js-client cannot run (needs Node 18+ and npm)")
    if not (JS_DIR / "node_modules" / "tus-js-client").is_dir():
        pytest.skip("tus-js-client is not installed: run `make test-deps` (needs npm)")
    return found


def run_client(
    node: str,
    endpoint: str,
    token: str,
    path: Path,
    *,
    chunk: int,
    metadata: dict[str, str],
    protocol: str = "tus-v1",
) -> dict[str, Any]:
    args = [endpoint, token, str(path), str(chunk), json.dumps(metadata), protocol]
    result = subprocess.run(
        [node, "tus_upload.mjs", *args],
        cwd=JS_DIR,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    outcome: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return outcome


@pytest.mark.parametrize(
    ("chunk", "cut_at", "protocol"),
    [
        (CHUNK, CHUNK + CHUNK // 2, "tus-v1"),
        (0, 12 * MiB, "tus-v1"),
        (CHUNK, CHUNK + CHUNK // 2, "ietf-draft-05"),
    ],
    ids=["5MiB-chunks", "one-patch", "ietf-draft-05"],
)
def test_cut_mid_chunk_resumes_and_the_file_matches(
    node: str,
    tus_server: LiveServer,
    proxy: CuttingProxy,
    tmp_path: Path,
    chunk: int,
    cut_at: int,
    protocol: str,
) -> None:
    data = random_csv(BIG)
    path = tmp_path / "big.csv"
    path.write_bytes(data)
    admin = tus_server.admin()
    assert admin.token is not None
    proxy.arm(cut_at)
    outcome = run_client(
        node,
        f"http://127.0.0.1:{proxy.port}/files/tus",
        admin.token,
        path,
        chunk=chunk,
        metadata={"filename": "big.csv", "filetype": "text/csv"},
        protocol=protocol,
    )
    assert proxy.cuts == 1
    # It resumed from what the server had kept, not from the start of its request.
    assert any(offset % CHUNK for offset in outcome["offsets"]), outcome
    assert outcome["fileId"], outcome
    stored = admin.get(f"/files/{outcome['fileId']}").json()
    assert stored["sha256"] == hashlib.sha256(data).hexdigest()
    downloaded = admin.get(f"/files/download/{outcome['fileId']}")
    assert hashlib.sha256(downloaded.content).hexdigest() == stored["sha256"]
