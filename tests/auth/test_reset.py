"""Password reset against a live server: tokens (single use, expiry, replacement, stored
hashed), who may issue them, imported customers without a password reaching a working login,
weak passwords in import rows, the CLI's link, and e-mail through a real SMTP server."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from tests.auth.conftest import FAST_RESET_TTL_SECONDS
from tests.auth.support import (
    STRONG,
    SmtpSink,
    assert_error,
    login,
    me,
    new_user,
    pair,
    post,
    run_import,
    sql,
    strong_password,
    tag,
    token_in,
)
from tests.fixtures.live import Api, LiveServer, clean_environ


@pytest.fixture
def admin(plain_server: LiveServer) -> Api:
    return plain_server.admin()


def issue(api: Api, user_id: int) -> dict[str, Any]:
    response = api.post(f"/users/{user_id}/password-reset")
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def redeem(server: LiveServer, token: str, new_password: str) -> Any:
    return post(server, "/auth/reset-password", json={"token": token, "new_password": new_password})


@contextmanager
def commits_of_reset_tokens_fail(server: LiveServer, user_id: int) -> Iterator[None]:
    """While inside, a transaction that stored a reset token for `user_id` fails at COMMIT
    (a deferred constraint trigger), as a commit can: serialisation, a lost connection."""
    name = f"refuse_reset_{tag()}"
    sql(
        server,
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
        f"IF NEW.user_id = {int(user_id)} THEN RAISE EXCEPTION 'commit refused'; END IF; "
        "RETURN NULL; END $$",
    )
    sql(
        server,
        f"CREATE CONSTRAINT TRIGGER {name} AFTER INSERT OR UPDATE ON password_reset_tokens "
        f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {name}()",
    )
    try:
        yield
    finally:
        sql(server, f"DROP TRIGGER {name} ON password_reset_tokens")
        sql(server, f"DROP FUNCTION {name}()")


def logged_events(server: LiveServer, event: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in server.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line.get("event") == event]


class TestResetTokens:
    def test_reset_then_login_and_old_tokens_die(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        user, password = new_user(admin)
        before = pair(plain_server, user["username"], password)
        body = issue(admin, user["id"])
        assert set(body) == {"reset_token", "reset_url", "expires_at", "emailed"}
        assert body["emailed"] is False
        assert (
            body["reset_url"]
            == f"http://files.example.test/auth/reset-password#token={body['reset_token']}"
        )

        new_password = strong_password()
        assert redeem(plain_server, body["reset_token"], new_password).status_code == 204
        assert_error(me(plain_server, before["access_token"]), 401, "invalid_token")
        assert_error(login(plain_server, user["username"], password), 401)
        profile = me(
            plain_server, pair(plain_server, user["username"], new_password)["access_token"]
        ).json()
        assert profile["password_reset_required"] is False

    def test_single_use(self, plain_server: LiveServer, admin: Api) -> None:
        user, _ = new_user(admin)
        token = issue(admin, user["id"])["reset_token"]
        assert redeem(plain_server, token, strong_password()).status_code == 204
        assert_error(redeem(plain_server, token, strong_password()), 400, "invalid_reset_token")

    def test_a_new_token_replaces_the_previous(self, plain_server: LiveServer, admin: Api) -> None:
        user, _ = new_user(admin)
        first = issue(admin, user["id"])["reset_token"]
        second = issue(admin, user["id"])["reset_token"]
        assert_error(redeem(plain_server, first, strong_password()), 400, "invalid_reset_token")
        assert redeem(plain_server, second, strong_password()).status_code == 204

    def test_weak_password_keeps_the_token_usable(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        user, _ = new_user(admin)
        token = issue(admin, user["id"])["reset_token"]
        assert_error(redeem(plain_server, token, "password123"), 422, "password_too_common")
        assert_error(redeem(plain_server, token, user["username"]), 422, "password_matches_account")
        assert redeem(plain_server, token, strong_password()).status_code == 204

    def test_stored_only_as_a_hash(self, plain_server: LiveServer, admin: Api) -> None:
        user, _ = new_user(admin)
        token = issue(admin, user["id"])["reset_token"]
        rows = sql(
            plain_server,
            "SELECT token_hash FROM password_reset_tokens WHERE user_id = %s",
            (user["id"],),
        )
        assert rows == [(hashlib.sha256(token.encode()).hexdigest(),)]

    def test_unknown_token_reveals_nothing(self, plain_server: LiveServer) -> None:
        body = assert_error(
            redeem(plain_server, "no-such-token", STRONG), 400, "invalid_reset_token"
        )
        assert body["detail"] == "This password reset link is invalid, used or expired"

    def test_expiry(self, fast_server: LiveServer) -> None:
        admin = fast_server.admin()
        user, _ = new_user(admin)
        token = issue(admin, user["id"])["reset_token"]
        time.sleep(FAST_RESET_TTL_SECONDS + 1)
        assert_error(redeem(fast_server, token, strong_password()), 400, "invalid_reset_token")


class TestWhoMayIssue:
    def test_staff_for_customer_users_only(self, admin: Api) -> None:
        staff = admin.user_api("staff")
        customer = admin.new_customer()
        customer_user, _ = new_user(admin, "customer", customer["id"])
        other_staff, _ = new_user(admin, "staff")
        assert staff.post(f"/users/{customer_user['id']}/password-reset").status_code == 200
        assert_error(
            staff.post(f"/users/{other_staff['id']}/password-reset"), 403, "forbidden_role"
        )
        admin_id = admin.get("/auth/me").json()["id"]
        assert_error(staff.post(f"/users/{admin_id}/password-reset"), 403, "forbidden_role")

    def test_customers_may_not(self, admin: Api) -> None:
        customer = admin.new_customer()
        api = admin.user_api("customer", customer["id"])
        me_id = api.get("/auth/me").json()["id"]
        assert_error(api.post(f"/users/{me_id}/password-reset"), 403, "forbidden_role")

    def test_missing_user_is_404(self, admin: Api) -> None:
        assert_error(admin.post("/users/999999999/password-reset"), 404, "user_not_found")


class TestImportedCustomers:
    def test_customer_without_password_reaches_a_working_login(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        email = f"nopass-{tag()}@example.com"
        job = run_import(admin, f"full_name,email\nNo Pass,{email}\n")
        assert (job["status"], job["successful_rows"]) == ("completed", 1), job
        # No login yet (nothing to log in with); nobody can log in as the e-mail, never a 500.
        assert admin.get("/users", params={"email": email}).json() == []
        assert_error(login(plain_server, email, "!unusable:"), 401, "invalid_credentials")
        [customer] = admin.get("/customers", params={"q": email}).json()

        # Staff send the reset link: it creates the login, reset required, and sets it up.
        issued = admin.post(f"/customers/{customer['id']}/password-reset")
        assert issued.status_code == 200, issued.text
        [user] = admin.get("/users", params={"email": email}).json()
        assert (user["customer_id"], user["password_reset_required"]) == (customer["id"], True)
        password = strong_password()
        assert redeem(plain_server, issued.json()["reset_token"], password).status_code == 204
        profile = me(plain_server, pair(plain_server, email, password)["access_token"]).json()
        assert (profile["id"], profile["role"], profile["password_reset_required"]) == (
            user["id"],
            "customer",
            False,
        )
        # A second link reuses that login: one account per e-mail.
        assert admin.post(f"/customers/{customer['id']}/password-reset").status_code == 200
        assert [u["id"] for u in admin.get("/users", params={"email": email}).json()] == [
            user["id"]
        ]

    def test_weak_password_row_is_imported_with_a_warning(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        weak, good = f"weak-{tag()}@example.com", f"good-{tag()}@example.com"
        good_password = strong_password()
        job = run_import(
            admin,
            f"full_name,email,password\nJohn Weak,{weak},password123\n"
            f"Gina Good,{good},{good_password}\n"
            f"Bad Row,not-an-email,{strong_password()}\n",
        )
        assert job["status"] == "completed", job
        assert (job["successful_rows"], job["failed_rows"], job["warning_rows"]) == (2, 1, 1), job
        # The weak password is not kept: the customer is in, with no login until a reset link.
        assert len(admin.get("/customers", params={"q": weak}).json()) == 1
        assert admin.get("/users", params={"email": weak}).json() == []
        assert_error(login(plain_server, weak, "password123"), 401, "invalid_credentials")
        assert login(plain_server, good, good_password).status_code == 200

        report = admin.get(f"/files/jobs/{job['id']}/errors.csv").text
        warning_line = next(line for line in report.splitlines() if line.startswith("2,"))
        assert "warning" in warning_line
        assert "too common" in warning_line
        assert "password123" not in report
        rows = sql(
            plain_server,
            'SELECT "row", is_warning FROM import_row_errors WHERE job_id = %s ORDER BY "row"',
            (job["id"],),
        )
        assert rows == [(2, True), (4, False)]

    def test_send_invites_needs_smtp(self, admin: Api) -> None:
        uploaded = admin.upload(
            b"full_name,email\nA,a@example.com\n", "c.csv", content_type="text/csv", file_type="csv"
        )
        response = admin.post(
            "/files/csv-import",
            json={
                "file_upload_id": uploaded.json()["id"],
                "validation_rules": {"send_invites": True},
            },
        )
        assert_error(response, 422, "smtp_not_configured")


def reset_password_cli(server: LiveServer, who: str) -> subprocess.CompletedProcess[str]:
    """`filestore reset-password WHO` against `server`'s database and settings."""
    env = clean_environ()
    env.update(server.env)
    return subprocess.run(
        [sys.executable, "-m", "filestore", "reset-password", who],
        cwd=server.workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


class TestCli:
    def test_reset_password_prints_a_working_link(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        email = f"cli-{tag()}@example.com"
        user, _ = new_user(admin, "staff", email=email)
        result = reset_password_cli(plain_server, email.upper())
        assert result.returncode == 0, result.stderr
        link = result.stdout.strip().splitlines()[-1]
        assert link.startswith("http://files.example.test/auth/reset-password#token=")
        password = strong_password()
        assert redeem(plain_server, link.split("#token=")[1], password).status_code == 204
        assert login(plain_server, user["username"], password).status_code == 200

    def test_a_customer_without_a_login_gets_one(
        self, plain_server: LiveServer, admin: Api
    ) -> None:
        # Imported or created without a password: no user yet; the link creates its login.
        customer = admin.new_customer(full_name="No Login Yet", email=f"cli-c-{tag()}@example.com")
        result = reset_password_cli(plain_server, customer["email"])
        assert result.returncode == 0, result.stderr
        link = result.stdout.strip().splitlines()[-1]
        password = strong_password()
        assert redeem(plain_server, link.split("#token=")[1], password).status_code == 204
        assert login(plain_server, customer["email"], password).status_code == 200

    def test_unknown_user(self, plain_server: LiveServer) -> None:
        result = reset_password_cli(plain_server, f"nobody-{tag()}")
        assert result.returncode == 1
        assert "#token=" not in result.stdout


class TestEmail:
    def test_reset_link_is_mailed_not_returned(
        self, mail_server: LiveServer, smtp: SmtpSink
    ) -> None:
        admin = mail_server.admin()
        customer = admin.new_customer(full_name="Mail Me", email=f"mail-{tag()}@example.com")
        user, _ = new_user(admin, "customer", customer["id"])
        body = issue(admin, user["id"])
        assert body["emailed"] is True
        assert body["reset_token"] is None
        assert body["reset_url"] is None

        (message,) = smtp.wait_for(customer["email"])
        assert message["Subject"] == "Reset your password"
        assert "no-reply@filestore.test" in message["From"]
        assert smtp.logins  # SMTP_USERNAME / SMTP_PASSWORD were used
        token = token_in(message)
        password = strong_password()
        assert redeem(mail_server, token, password).status_code == 204
        assert login(mail_server, customer["email"], password).status_code == 200

    def test_no_mail_and_no_audit_line_when_the_commit_fails(
        self, mail_server: LiveServer, smtp: SmtpSink
    ) -> None:
        admin = mail_server.admin()
        customer = admin.new_customer(email=f"nocommit-{tag()}@example.com")
        user, _ = new_user(admin, "customer", customer["id"])
        with commits_of_reset_tokens_fail(mail_server, user["id"]):
            failed = admin.post(f"/users/{user['id']}/password-reset")
        assert failed.status_code == 500, failed.text
        # The mail would have been sent before the response: none is a link to nothing.
        assert smtp.to(customer["email"]) == []
        issued = logged_events(mail_server, "audit.password.reset_issued")
        assert [e for e in issued if e["target_user_id"] == user["id"]] == []

        assert issue(admin, user["id"])["emailed"] is True
        (message,) = smtp.wait_for(customer["email"])
        assert redeem(mail_server, token_in(message), strong_password()).status_code == 204

    def test_user_without_email_gets_the_token_in_the_response(
        self, mail_server: LiveServer
    ) -> None:
        admin = mail_server.admin()
        user, _ = new_user(admin, "staff")
        body = issue(admin, user["id"])
        assert body["emailed"] is False
        assert body["reset_token"]

    def test_import_invites_every_customer_created_without_password(
        self, mail_server: LiveServer, smtp: SmtpSink
    ) -> None:
        admin = mail_server.admin()
        t = tag()
        invited = [f"inv{i}-{t}@example.com" for i in range(3)]
        with_password = f"haspw-{t}@example.com"
        weak = f"weakpw-{t}@example.com"
        rows = "".join(f"Invited {i},{email},\n" for i, email in enumerate(invited))
        csv_text = (
            f"full_name,email,password\n{rows}"
            f"Has Pw,{with_password},{strong_password()}\nWeak Pw,{weak},password123\n"
        )
        job = run_import(admin, csv_text, rules={"send_invites": True})
        assert job["status"] == "completed", job
        for _ in range(100):  # the invites go out right after the job completes
            job = admin.get(f"/files/jobs/{job['id']}").json()
            if "invites_sent" in job["result"]:
                break
            time.sleep(0.2)
        assert job["result"]["invites_sent"] == 4, job
        assert job["result"]["invites_failed"] == 0

        for address in [*invited, weak]:
            (message,) = smtp.wait_for(address)
            assert "choose a password" in message["Subject"].lower()
        assert smtp.to(with_password) == []

        token = token_in(smtp.to(invited[0])[0])
        password = strong_password()
        assert redeem(mail_server, token, password).status_code == 204
        assert (
            me(mail_server, pair(mail_server, invited[0], password)["access_token"]).json()[
                "password_reset_required"
            ]
            is False
        )
