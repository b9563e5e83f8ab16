"""`filestore serve --workers 2` drains on SIGTERM like a single process: the upload in flight
finishes (201, its bytes kept), every new request meanwhile is a 503 `shutting_down` from
whichever child takes it, and the supervisor exits 0 once its children are done.

A signal sent to the whole process group (systemd, Ctrl-C) reaches each child twice, from the
group and forwarded by the supervisor; that must still drain, not cut the upload off.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.conftest import Postgres
from tests.fixtures.live import SlowUpload, production_env
from tests.fixtures.live import start_server as start_live_server
from tests.fixtures.servers import SeaweedFS, own_buckets, s3_env
from tests.imports.support import query

pytestmark = pytest.mark.timeout(180)

DRAIN_SECONDS = 20


@pytest.mark.parametrize("signal_to", ["supervisor", "process group"])
def test_every_process_of_workers_2_drains(
    postgres: Postgres, seaweed: SeaweedFS, tmp_path: Path, signal_to: str
) -> None:
    env = production_env(postgres.create_database(f"drain_{uuid.uuid4().hex[:8]}"))
    env.update(s3_env(seaweed))
    env.update(own_buckets(f"drain{uuid.uuid4().hex[:6]}"))
    env.update(
        {"FILESTORE_IN_PROCESS_WORKER": "false", "SHUTDOWN_DRAIN_SECONDS": str(DRAIN_SECONDS)}
    )
    server = start_live_server(tmp_path / "api", env, extra_args=["--workers", "2"])
    try:
        api = server.admin()
        upload = SlowUpload(api, rows=5).start()
        time.sleep(0.5)
        if signal_to == "supervisor":
            server.process.send_signal(signal.SIGTERM)
        else:
            os.killpg(os.getpgid(server.process.pid), signal.SIGTERM)
        time.sleep(1.0)  # both children have had their signal(s)

        # New connections land on either child (the kernel spreads them over the shared
        # socket): every one is refused while the upload is still running.
        codes = []
        for _ in range(8):
            response = httpx.get(f"{server.base_url}/health", timeout=5)
            codes.append((response.status_code, response.json().get("code")))
        assert codes == [(503, "shutting_down")] * 8, codes
        assert not upload.finished, "the upload ended before its body was sent"

        answer = upload.response()
        assert answer.status_code == 201, answer.text
        assert server.process.wait(DRAIN_SECONDS) == 0
        kept = answer.json()
        assert query(
            server, "SELECT upload_status, file_size FROM file_uploads WHERE id = %s", (kept["id"],)
        ) == [("completed", kept["file_size"])]
    finally:
        server.stop()
