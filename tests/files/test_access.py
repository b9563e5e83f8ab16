"""Who may see and change what, checked against a live server on both stores.

Admins see everything. Staff see every customer's files and tickets, but not backups. A
customer user sees only its own customer's files and tickets; anything else is a 404 exactly
like a missing record (never a 403 that would reveal it exists), it uploads only for itself and
deletes only what it uploaded. Every route but `/health` and the token-less `/auth` ones needs a
valid token.
"""

from __future__ import annotations

import base64
import json
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from tests.fixtures.inspect import StoreInspector
from tests.fixtures.live import Api, LiveServer
from tests.fixtures.servers import SeaweedFS

CSV = b"full_name,email\nJane Roe,jane@example.com\n"
MISSING_ID = 2**62

# -- the world every access test runs in: two customers, their users, a ticket each ------------


@dataclass(frozen=True)
class World:
    admin: Api
    staff: Api
    own: Api  # a user of customer A
    other: Api  # a user of customer B
    customer_a: int
    customer_b: int
    ticket_a: int
    ticket_b: int

    def actor(self, name: str) -> Api:
        actor: Api = getattr(self, name)
        return actor


@pytest.fixture(scope="module")
def world(server: LiveServer) -> World:
    admin = server.admin()
    customer_a = int(admin.new_customer(full_name="Customer A")["id"])
    customer_b = int(admin.new_customer(full_name="Customer B")["id"])
    return World(
        admin=admin,
        staff=admin.user_api("staff"),
        own=admin.user_api("customer", customer_a),
        other=admin.user_api("customer", customer_b),
        customer_a=customer_a,
        customer_b=customer_b,
        ticket_a=int(admin.new_ticket(customer_a, "A's ticket")["id"]),
        ticket_b=int(admin.new_ticket(customer_b, "B's ticket")["id"]),
    )


def created(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def assert_hidden_like_missing(response: httpx.Response, missing: httpx.Response) -> None:
    """A 404 a client cannot tell apart from the one for a record that does not exist."""
    assert response.status_code == 404, response.text
    assert missing.status_code == 404, missing.text
    assert response.headers["content-type"].startswith("application/json")
    assert response.json()["code"] == missing.json()["code"]


# -- the file matrix ------------------------------------------------------------------------------

LISTED = "listed"
HIDDEN = "hidden"
Outcome = int | str
ACTORS = ("admin", "staff", "own", "other")

# kind -> action -> outcome for (admin, staff, own customer, other customer).
EXPECTED: dict[str, dict[str, tuple[Outcome, Outcome, Outcome, Outcome]]] = {
    # A file of customer A, uploaded by staff.
    "staff_upload": {
        "metadata": (200, 200, 200, 404),
        "download": (200, 200, 200, 404),
        "list_customer": (LISTED, LISTED, LISTED, 404),
        "delete": (204, 204, 403, 404),
    },
    # A backup of customer A, uploaded by an admin.
    "backup": {
        "metadata": (200, 404, 404, 404),
        "download": (200, 404, 404, 404),
        "list_customer": (LISTED, HIDDEN, HIDDEN, 404),
        "delete": (204, 404, 404, 404),
    },
    # Media of A's ticket, uploaded by A's own user.
    "ticket_media": {
        "metadata": (200, 200, 200, 404),
        "download": (200, 200, 200, 404),
        "list_customer": (LISTED, LISTED, LISTED, 404),
        "list_ticket": (LISTED, LISTED, LISTED, 404),
        "delete": (204, 204, 204, 404),
    },
}

MATRIX = [
    pytest.param(kind, action, actor, outcome, id=f"{kind}-{action}-{actor}")
    for kind, actions in EXPECTED.items()
    for action, outcomes in actions.items()
    for actor, outcome in zip(ACTORS, outcomes, strict=True)
]


def make_file(world: World, kind: str) -> int:
    if kind == "staff_upload":
        body = created(world.staff.upload(CSV, "contract.csv", customer_id=world.customer_a))
    elif kind == "backup":
        body = created(
            world.admin.upload(CSV, "backup.csv", file_type="backup", customer_id=world.customer_a)
        )
        assert body["bucket"] == "backups"
    else:
        body = created(world.own.upload(CSV, "router-photo.csv", ticket_id=world.ticket_a))
        assert body["bucket"] == "ticket-media"
    assert body["customer_id"] == world.customer_a
    file_id: int = body["id"]
    return file_id


def request_for(world: World, action: str, file_id: int) -> tuple[str, str, str]:
    """(method, url, url of the same request for a record that does not exist)."""
    if action == "metadata":
        return "GET", f"/files/{file_id}", f"/files/{MISSING_ID}"
    if action == "download":
        return "GET", f"/files/download/{file_id}", f"/files/download/{MISSING_ID}"
    if action == "delete":
        return "DELETE", f"/files/{file_id}", f"/files/{MISSING_ID}"
    if action == "list_customer":
        return "GET", f"/files/customer/{world.customer_a}", f"/files/customer/{MISSING_ID}"
    return "GET", f"/files/ticket/{world.ticket_a}", f"/files/ticket/{MISSING_ID}"


class TestFileAccessMatrix:
    @pytest.mark.parametrize(("kind", "action", "actor", "expected"), MATRIX)
    def test_access(
        self, world: World, kind: str, action: str, actor: str, expected: Outcome
    ) -> None:
        file_id = make_file(world, kind)
        api = world.actor(actor)
        method, url, missing_url = request_for(world, action, file_id)
        response = api.http.request(method, url)

        if expected == 404:
            assert_hidden_like_missing(response, api.http.request(method, missing_url))
        elif expected in (LISTED, HIDDEN):
            assert response.status_code == 200, response.text
            listed = [f["id"] for f in response.json()]
            assert (file_id in listed) is (expected == LISTED)
        else:
            assert response.status_code == expected, response.text

        if action == "download" and expected == 200:
            assert response.content == CSV
        if action == "metadata" and expected == 200:
            assert response.json()["id"] == file_id
        if action == "delete":
            # Only a 204 deletes: after anything else the file is still there for the admin.
            after = world.admin.get(f"/files/{file_id}")
            assert after.status_code == (404 if expected == 204 else 200)
            if expected == 403:
                assert response.json()["code"] == "forbidden_delete"


class TestStaffListsSkipBackups:
    def test_backup_without_customer_is_admin_only(self, world: World) -> None:
        backup = created(world.admin.upload(CSV, "nightly.csv", file_type="backup"))
        assert world.admin.get(f"/files/{backup['id']}").status_code == 200
        assert world.staff.get(f"/files/{backup['id']}").status_code == 404
        assert world.staff.get(f"/files/download/{backup['id']}").status_code == 404


class TestUploadOwnership:
    def test_customer_upload_belongs_to_its_customer(self, world: World) -> None:
        body = created(world.own.upload(CSV, "mine.csv"))
        assert body["customer_id"] == world.customer_a
        assert world.other.get(f"/files/{body['id']}").status_code == 404

    def test_customer_may_name_its_own_customer(self, world: World) -> None:
        body = created(world.own.upload(CSV, "mine.csv", customer_id=world.customer_a))
        assert body["customer_id"] == world.customer_a

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields-first", "file-first"])
    def test_customer_cannot_upload_for_another_customer(
        self, server: LiveServer, seaweed: SeaweedFS, world: World, file_first: bool
    ) -> None:
        store = StoreInspector(server, seaweed)
        before = store.snapshot()
        response = world.own.upload(
            CSV, "x.csv", customer_id=world.customer_b, file_first=file_first
        )
        missing = world.own.upload(CSV, "x.csv", customer_id=MISSING_ID, file_first=file_first)
        assert_hidden_like_missing(response, missing)
        store.assert_nothing_new(before, wait=2)

    @pytest.mark.parametrize("file_first", [False, True], ids=["fields-first", "file-first"])
    def test_customer_cannot_attach_to_another_customers_ticket(
        self, server: LiveServer, seaweed: SeaweedFS, world: World, file_first: bool
    ) -> None:
        store = StoreInspector(server, seaweed)
        before = store.snapshot()
        response = world.own.upload(CSV, "x.csv", ticket_id=world.ticket_b, file_first=file_first)
        missing = world.own.upload(CSV, "x.csv", ticket_id=MISSING_ID, file_first=file_first)
        assert_hidden_like_missing(response, missing)
        store.assert_nothing_new(before, wait=2)

    @pytest.mark.parametrize("actor", ["staff", "own"])
    def test_only_admins_upload_backups(self, world: World, actor: str) -> None:
        response = world.actor(actor).upload(
            CSV, "backup.csv", file_type="backup", customer_id=world.customer_a
        )
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden_backup"

    def test_staff_uploads_for_any_customer(self, world: World) -> None:
        body = created(world.staff.upload(CSV, "b.csv", customer_id=world.customer_b))
        assert body["customer_id"] == world.customer_b
        assert world.other.get(f"/files/{body['id']}").status_code == 200


# -- authentication -------------------------------------------------------------------------------

# Public by design (issue 6): they carry their own proof (a refresh or reset token) or only
# work once (setup).
PUBLIC_ROUTES = {
    ("GET", "/health"),
    ("GET", "/health/live"),
    ("GET", "/health/ready"),
    ("POST", "/auth/login"),
    ("POST", "/auth/refresh"),
    ("POST", "/auth/logout"),
    ("POST", "/auth/setup"),
    ("POST", "/auth/reset-password"),
    # tus discovery: a browser's CORS preflight carries no Authorization header, and the
    # answer (Tus-Version, Tus-Extension, Tus-Max-Size) holds nothing private.
    ("OPTIONS", "/files/tus"),
    ("OPTIONS", "/files/tus/{upload_id}"),
}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims_for(user_id: int, **changes: Any) -> dict[str, Any]:
    now = datetime.now(UTC)
    claims: dict[str, Any] = {
        "sub": str(user_id),
        "ver": 0,
        "typ": "access",
        "iat": now,
        "exp": now + timedelta(minutes=10),
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def forge(kind: str, *, secret: str, user_id: int) -> str | None:
    """A token of `kind`, or None for no Authorization header at all."""
    now = datetime.now(UTC)
    if kind == "none":
        return None
    if kind == "garbage":
        return "not-a-jwt"
    if kind == "expired":
        claims = claims_for(user_id, iat=now - timedelta(hours=2), exp=now - timedelta(hours=1))
        return jwt.encode(claims, secret, algorithm="HS256")
    if kind == "other_secret":
        return jwt.encode(claims_for(user_id), secrets.token_urlsafe(48), algorithm="HS256")
    if kind == "alg_none":
        header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
        payload = claims_for(user_id, iat=int(now.timestamp()), exp=int(now.timestamp()) + 600)
        return f"{header}.{b64url(json.dumps(payload).encode())}."
    if kind == "hs512":
        return jwt.encode(claims_for(user_id), secret, algorithm="HS512")
    if kind == "no_exp":
        return jwt.encode(claims_for(user_id, exp=None), secret, algorithm="HS256")
    if kind == "unknown_user":
        return jwt.encode(claims_for(MISSING_ID), secret, algorithm="HS256")
    if kind == "valid":
        return jwt.encode(claims_for(user_id), secret, algorithm="HS256")
    raise AssertionError(kind)


BAD_TOKENS = [
    "none",
    "garbage",
    "expired",
    "other_secret",
    "alg_none",
    "hs512",
    "no_exp",
    "unknown_user",
]


@pytest.fixture(scope="module")
def protected_routes(server: LiveServer) -> list[tuple[str, str]]:
    """Every (method, path) the server documents, except the public ones; ids set to 1."""
    schema = httpx.get(f"{server.base_url}/openapi.json").json()
    routes = []
    for path, operations in schema["paths"].items():
        for method in operations:
            if (method.upper(), path) in PUBLIC_ROUTES:
                continue
            concrete = "/".join("1" if p.startswith("{") else p for p in path.split("/"))
            routes.append((method.upper(), concrete))
    # The list must really cover the API, or the test below would prove little.
    assert {
        ("POST", "/files/upload"),
        ("GET", "/files/download/1"),
        ("GET", "/files/1"),
        ("DELETE", "/files/1"),
        ("GET", "/files/customer/1"),
        ("GET", "/files/ticket/1"),
        ("GET", "/customers"),
        ("POST", "/customers"),
        ("GET", "/tickets"),
        ("POST", "/users"),
        ("GET", "/auth/me"),
    } <= set(routes)
    return routes


@pytest.fixture(scope="module")
def admin_id(server: LiveServer) -> int:
    user_id: int = server.admin().get("/auth/me").json()["id"]
    return user_id


class TestAuthentication:
    def test_forged_valid_token_is_accepted(self, server: LiveServer, admin_id: int) -> None:
        """The control for the tests below: the forging recipe itself is right."""
        token = forge("valid", secret=server.env["JWT_SECRET_KEY"], user_id=admin_id)
        assert token is not None
        response = server.api(token).get("/auth/me")
        assert response.status_code == 200, response.text
        assert response.json()["id"] == admin_id

    @pytest.mark.parametrize("kind", BAD_TOKENS)
    def test_every_protected_route_refuses_a_bad_token(
        self,
        server: LiveServer,
        protected_routes: list[tuple[str, str]],
        admin_id: int,
        kind: str,
    ) -> None:
        token = forge(kind, secret=server.env["JWT_SECRET_KEY"], user_id=admin_id)
        api = server.api(token)
        failures = []
        for method, path in protected_routes:
            response = api.http.request(method, path)
            # A HEAD answer has the GET's headers and no body, so only GET can show the code.
            if method == "HEAD":
                body = {"code": "(HEAD has no body)"}
            elif response.headers.get("content-type") == "application/json":
                body = response.json()
            else:
                body = {}
            if (
                response.status_code != 401
                or not isinstance(body.get("code"), str)
                or response.headers.get("www-authenticate") != "Bearer"
            ):
                failures.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
        assert failures == []

    def test_expired_token_says_so(self, server: LiveServer, admin_id: int) -> None:
        token = forge("expired", secret=server.env["JWT_SECRET_KEY"], user_id=admin_id)
        response = server.api(token).get("/auth/me")
        assert response.status_code == 401
        assert response.json()["code"] == "token_expired"

    @pytest.mark.parametrize("path", ["/health"])
    def test_public_routes_need_no_token(self, server: LiveServer, path: str) -> None:
        assert server.api().get(path).status_code == 200


# -- customers, tickets, users ---------------------------------------------------------------


class TestCustomerIsolation:
    def test_customer_lists_only_itself(self, world: World) -> None:
        listed = world.own.get("/customers", params={"limit": 500})
        assert listed.status_code == 200
        assert [c["id"] for c in listed.json()] == [world.customer_a]
        assert len(world.staff.get("/customers", params={"limit": 500}).json()) >= 2

    def test_customer_cannot_find_another_by_email(self, world: World) -> None:
        email = world.admin.get(f"/customers/{world.customer_b}").json()["email"]
        assert world.staff.get("/customers", params={"email": email}).json() != []
        assert world.own.get("/customers", params={"email": email}).json() == []

    def test_other_customer_is_404(self, world: World) -> None:
        assert_hidden_like_missing(
            world.own.get(f"/customers/{world.customer_b}"),
            world.own.get(f"/customers/{MISSING_ID}"),
        )
        assert world.own.get(f"/customers/{world.customer_a}").status_code == 200
        assert world.staff.get(f"/customers/{world.customer_b}").status_code == 200

    def test_customer_lists_only_its_tickets(self, world: World) -> None:
        tickets = world.own.get("/tickets", params={"limit": 500}).json()
        assert world.ticket_a in [t["id"] for t in tickets]
        assert {t["customer_id"] for t in tickets} == {world.customer_a}
        assert world.own.get("/tickets", params={"customer_id": world.customer_b}).json() == []
        staff_view = [t["id"] for t in world.staff.get("/tickets", params={"limit": 500}).json()]
        assert {world.ticket_a, world.ticket_b} <= set(staff_view)

    def test_other_customers_ticket_is_404(self, world: World) -> None:
        assert_hidden_like_missing(
            world.own.get(f"/tickets/{world.ticket_b}"), world.own.get(f"/tickets/{MISSING_ID}")
        )
        assert world.own.get(f"/tickets/{world.ticket_a}").status_code == 200
        assert world.staff.get(f"/tickets/{world.ticket_b}").status_code == 200

    def test_customer_cannot_open_a_ticket_for_another_customer(self, world: World) -> None:
        response = world.own.post(
            "/tickets", json={"customer_id": world.customer_b, "subject": "Not mine"}
        )
        missing = world.own.post("/tickets", json={"customer_id": MISSING_ID, "subject": "Nobody"})
        assert_hidden_like_missing(response, missing)
        subjects = [
            t["subject"]
            for t in world.staff.get("/tickets", params={"customer_id": world.customer_b}).json()
        ]
        assert "Not mine" not in subjects

    def test_customer_opens_tickets_for_itself(self, world: World) -> None:
        ticket = created(world.own.post("/tickets", json={"subject": "Slow line"}))
        assert ticket["customer_id"] == world.customer_a

    def test_customer_cannot_create_customers(self, world: World) -> None:
        response = world.own.post(
            "/customers", json={"full_name": "X", "email": f"x-{uuid.uuid4().hex[:8]}@example.com"}
        )
        assert response.status_code == 403, response.text


class TestUserAdministration:
    @pytest.mark.parametrize("actor", ["staff", "own"])
    def test_only_admins_create_users(self, world: World, actor: str) -> None:
        body = {
            "username": f"u-{uuid.uuid4().hex[:8]}",
            "password": "Pw-long-enough",
            "role": "staff",
        }
        response = world.actor(actor).post("/users", json=body)
        assert response.status_code == 403, response.text
        assert response.json()["code"] == "forbidden_role"

    def test_admin_creates_a_user_who_can_log_in(self, server: LiveServer, world: World) -> None:
        username = f"staff-{uuid.uuid4().hex[:8]}"
        user = created(
            world.admin.post(
                "/users", json={"username": username, "password": "Pw-long-enough", "role": "staff"}
            )
        )
        assert user["role"] == "staff"
        token = server.api().login(username, "Pw-long-enough")
        assert server.api(token).get("/auth/me").json()["id"] == user["id"]

    @pytest.mark.parametrize(
        ("extra", "code"),
        [
            ({"role": "customer"}, "customer_required"),
            ({"role": "customer", "customer_id": MISSING_ID}, "customer_not_found"),
            ({"role": "staff", "customer_id": 1}, "customer_not_allowed"),
        ],
        ids=["customer-without-customer", "customer-of-missing-customer", "staff-with-customer"],
    )
    def test_customer_link_is_checked(self, world: World, extra: dict[str, Any], code: str) -> None:
        body = {"username": f"u-{uuid.uuid4().hex[:8]}", "password": "Pw-long-enough", **extra}
        response = world.admin.post("/users", json=body)
        assert response.status_code == 422, response.text
        assert response.json()["code"] == code


class TestCustomerLogin:
    @pytest.mark.parametrize("spelling", [str.lower, str.upper], ids=["lower", "upper"])
    def test_customer_user_logs_in_with_the_customers_email(
        self, server: LiveServer, world: World, spelling: Callable[[str], str]
    ) -> None:
        customer = world.admin.new_customer(email=f"Jane.Roe-{uuid.uuid4().hex[:8]}@Example.com")
        user, password = world.admin.new_user("customer", customer["id"])
        assert user["email"] == customer["email"]

        response = server.api().post(
            "/auth/login", json={"username": spelling(customer["email"]), "password": password}
        )
        assert response.status_code == 200, response.text
        me = server.api(response.json()["access_token"]).get("/auth/me").json()
        assert me["id"] == user["id"]
        assert me["customer_id"] == customer["id"]

        wrong = server.api().post(
            "/auth/login", json={"username": customer["email"], "password": password + "x"}
        )
        assert wrong.status_code == 401
