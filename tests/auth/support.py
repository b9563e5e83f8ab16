"""Helpers of the account tests: token pairs, error bodies, the server's database, a real SMTP
server (aiosmtpd) that keeps what it receives, and CSV imports through the API."""

from __future__ import annotations

import email
import email.policy
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

import httpx
import psycopg
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session

from filestore.db import libpq_url
from tests.fixtures.live import Api, LiveServer
from tests.fixtures.servers import free_port

STRONG = "correct horse battery staple"


def tag() -> str:
    return uuid.uuid4().hex[:10]


def strong_password() -> str:
    return f"Pw-{uuid.uuid4().hex[:16]}"


def post(server: LiveServer, path: str, *, ip: str | None = None, **kwargs: Any) -> httpx.Response:
    """An unauthenticated POST; `ip` is sent as X-Forwarded-For (uvicorn trusts it from
    127.0.0.1), so a test can act from its own client address."""
    headers = dict(kwargs.pop("headers", {}) or {})
    if ip:
        headers["X-Forwarded-For"] = ip
    return httpx.post(f"{server.base_url}{path}", headers=headers, timeout=60, **kwargs)


def login(
    server: LiveServer, username: str, password: str, *, ip: str | None = None
) -> httpx.Response:
    return post(server, "/auth/login", ip=ip, json={"username": username, "password": password})


def pair(
    server: LiveServer, username: str, password: str, *, ip: str | None = None
) -> dict[str, Any]:
    response = login(server, username, password, ip=ip)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refresh(server: LiveServer, token: str) -> httpx.Response:
    return post(server, "/auth/refresh", json={"refresh_token": token})


def me(server: LiveServer, access_token: str) -> httpx.Response:
    return server.api(access_token).get("/auth/me")


def assert_error(response: httpx.Response, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    assert set(body) == {"detail", "code"}, body
    if code is not None:
        assert body["code"] == code, body
    return body


def new_user(
    admin: Api, role: str = "staff", customer_id: int | None = None, **fields: Any
) -> tuple[dict[str, Any], str]:
    return admin.new_user(role, customer_id, **fields)


def sql(
    server: LiveServer, query: str, params: tuple[Any, ...] | dict[str, Any] = ()
) -> list[tuple[Any, ...]]:
    """Run SQL on the server's own database; the rows, if any."""
    with psycopg.connect(libpq_url(server.env["DATABASE_URL"]), autocommit=True) as conn:
        cursor = conn.execute(query, params)
        return list(cursor.fetchall()) if cursor.description else []


# -- CSV imports ----------------------------------------------------------------------------------


def run_import(
    api: Api, csv_text: str, *, rules: dict[str, Any] | None = None, timeout: float = 60
) -> dict[str, Any]:
    """Upload a CSV, import it and wait for the job to finish; the job."""
    uploaded = api.upload(
        csv_text.encode(), "customers.csv", content_type="text/csv", file_type="csv"
    )
    assert uploaded.status_code == 201, uploaded.text
    body: dict[str, Any] = {"file_upload_id": uploaded.json()["id"], "import_type": "customers"}
    if rules is not None:
        body["validation_rules"] = rules
    started = api.post("/files/csv-import", json=body)
    assert started.status_code == 202, started.text
    job_id = started.json()["job_id"]
    deadline = time.monotonic() + timeout
    while True:
        job: dict[str, Any] = api.get(f"/files/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed", "cancelled"):
            return job
        assert time.monotonic() < deadline, job
        time.sleep(0.2)


# -- SMTP -----------------------------------------------------------------------------------------

SMTP_USER = "mailer"
SMTP_PASSWORD = "mail-" + uuid.uuid4().hex


@dataclass
class SmtpSink:
    """A real SMTP server on 127.0.0.1 (aiosmtpd, AUTH required) that keeps every message."""

    host: str
    port: int
    controller: Controller
    messages: list[EmailMessage] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def env(self) -> dict[str, str]:
        return {
            "SMTP_HOST": self.host,
            "SMTP_PORT": str(self.port),
            "SMTP_USERNAME": SMTP_USER,
            "SMTP_PASSWORD": SMTP_PASSWORD,
            "SMTP_FROM": "no-reply@filestore.test",
            "SMTP_STARTTLS": "false",
        }

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if address.lower() in str(m["To"]).lower()]

    def wait_for(self, address: str, *, count: int = 1, timeout: float = 20) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.to(address)
            if len(found) >= count:
                return found
            assert time.monotonic() < deadline, f"no mail for {address} after {timeout}s"
            time.sleep(0.1)

    def stop(self) -> None:
        self.controller.stop()


class _Handler:
    def __init__(self, sink: list[EmailMessage], lock: threading.Lock) -> None:
        self.sink = sink
        self.lock = lock

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        content = (
            envelope.content
            if isinstance(envelope.content, bytes)
            else str(envelope.content).encode()
        )
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        with self.lock:
            self.sink.append(message)
        return "250 Message accepted"


def start_smtp() -> SmtpSink:
    messages: list[EmailMessage] = []
    logins: list[str] = []
    lock = threading.Lock()

    def authenticator(
        server: SMTPServer, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_USER.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        if ok:
            logins.append(SMTP_USER)
        return AuthResult(success=ok)

    port = free_port()
    controller = Controller(
        _Handler(messages, lock),
        hostname="127.0.0.1",
        port=port,
        authenticator=authenticator,
        auth_required=True,
        auth_require_tls=False,
    )
    controller.start()
    return SmtpSink("127.0.0.1", port, controller, messages, logins, lock)


LINK = re.compile(r"https?://\S+#token=([A-Za-z0-9_\-]+)")


def token_in(message: EmailMessage) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    text = body.get_content()
    found = LINK.search(text)
    assert found, text
    return found.group(1)
