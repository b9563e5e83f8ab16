"""A client that goes away mid-upload is not a server error: it is counted as status 499
and logged as `request.client_disconnected`, without a traceback."""

from __future__ import annotations

import socket
import time
import urllib.parse
import uuid

import httpx

from tests.fixtures.live import LiveServer
from tests.ops.test_observability import metric

ROUTE = "/files/upload"


def abandon_upload(server: LiveServer, token: str, customer_id: int) -> None:
    """Send the headers and half of a multipart body, then close the connection."""
    url = urllib.parse.urlsplit(server.base_url)
    boundary = uuid.uuid4().hex
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="customer_id"\r\n\r\n'
        f"{customer_id}\r\n--{boundary}\r\n"
        'Content-Disposition: form-data; name="file"; filename="gone.csv"\r\n'
        "Content-Type: text/csv\r\n\r\n"
    ).encode() + b"a,b\n" * 20_000
    request = (
        f"POST {ROUTE} HTTP/1.1\r\nHost: {url.netloc}\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(head) * 4}\r\n\r\n"
    ).encode()
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(request + head)
        time.sleep(0.5)  # the server is reading the file


class TestClientAbort:
    def test_counted_as_499_not_500(self, s3_server: LiveServer) -> None:
        admin = s3_server.admin()
        customer = admin.new_customer()["id"]
        before = httpx.get(f"{s3_server.base_url}/metrics").text
        log_size = len(s3_server.log())
        abandon_upload(s3_server, str(admin.token), customer)

        labels = {"method": "POST", "route": ROUTE}
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            after = httpx.get(f"{s3_server.base_url}/metrics").text
            if metric(after, "filestore_http_requests_total", status="499", **labels) > metric(
                before, "filestore_http_requests_total", status="499", **labels
            ):
                break
            time.sleep(0.2)
        else:
            raise AssertionError("the abandoned upload was not counted as 499")
        assert metric(after, "filestore_http_requests_total", status="500", **labels) == metric(
            before, "filestore_http_requests_total", status="500", **labels
        )
        log = s3_server.log()[log_size:]
        assert "request.unhandled_error" not in log
        assert "Traceback" not in log
        assert "request.client_disconnected" in log
