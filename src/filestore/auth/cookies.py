"""The console's cookie credentials: where its tokens live in a browser and the CSRF check that
lets the API accept them.

The console never puts a token where JavaScript can read it. Its sign-in sets three cookies,
all `SameSite=Strict` and `Secure` outside embedded dev mode:

- `filestore_access` (HttpOnly, path `/`): the access token, sent by the browser with every
  same-origin request; the API takes it when a request has no `Authorization` header.
- `filestore_refresh` (HttpOnly, path `/console/session`): the refresh token, seen only by the
  console's refresh and sign-out.
- `filestore_csrf` (readable by the page): a random token the page echoes in `X-CSRF-Token`.
  A state-changing request authenticated by cookie is refused unless the header matches the
  cookie (double submit): another site can make a browser send cookies (SameSite already
  stops that in current browsers) but can neither read this cookie nor set a custom header
  on a cross-site request without a CORS preflight.
"""

from __future__ import annotations

import hmac
import secrets

from starlette.requests import Request
from starlette.responses import Response

from filestore.errors import Forbidden

ACCESS_COOKIE = "filestore_access"
REFRESH_COOKIE = "filestore_refresh"
CSRF_COOKIE = "filestore_csrf"
CSRF_HEADER = "X-CSRF-Token"
REFRESH_PATH = "/console/session"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def check_csrf(request: Request) -> None:
    """403 `csrf_failed` unless a state-changing request echoes the CSRF cookie in its header."""
    if request.method in SAFE_METHODS:
        return
    cookie = request.cookies.get(CSRF_COOKIE, "")
    header = request.headers.get(CSRF_HEADER, "")
    if not cookie or not hmac.compare_digest(cookie.encode(), header.encode()):
        raise Forbidden(
            "Missing or wrong X-CSRF-Token for a request signed in by cookie", code="csrf_failed"
        )


def access_token(request: Request) -> str | None:
    """The cookie's access token, after the CSRF check; None without the cookie."""
    token = request.cookies.get(ACCESS_COOKIE)
    if not token:
        return None
    check_csrf(request)
    return token


def set_session(
    response: Response,
    *,
    access: str,
    refresh: str,
    csrf: str,
    max_age: int,
    secure: bool,
) -> None:
    """The three cookies of a console session; they last as long as the refresh token may."""
    for name, value, path, httponly in (
        (ACCESS_COOKIE, access, "/", True),
        (REFRESH_COOKIE, refresh, REFRESH_PATH, True),
        (CSRF_COOKIE, csrf, "/", False),
    ):
        response.set_cookie(
            name,
            value,
            max_age=max_age,
            path=path,
            secure=secure,
            httponly=httponly,
            samesite="strict",
        )


def clear_session(response: Response, *, secure: bool) -> None:
    for name, path in ((ACCESS_COOKIE, "/"), (REFRESH_COOKIE, REFRESH_PATH), (CSRF_COOKIE, "/")):
        response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="strict")
