"""`/console`: the staff console's page and its cookie session (sign-in, refresh, sign-out).

The page is one HTML shell plus static files (`static/`, mounted by `main` at
`/console/static`); everything it shows comes from the public API, called with the cookie
session set here (see `auth/cookies.py`). None of these routes is part of the API contract, so
none is in the OpenAPI schema.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from filestore import __version__
from filestore.auth import cookies
from filestore.auth import service as auth_service
from filestore.auth import sessions as auth_sessions
from filestore.auth.schemas import LoginRequest
from filestore.deps import ClientDep, SessionDep, SettingsDep
from filestore.errors import Forbidden, Unauthorized
from filestore.settings import Settings

PACKAGE_DIR = Path(__file__).parent
STATIC_DIR = PACKAGE_DIR / "static"

# No inline script or style anywhere: the page's code and styles are files under 'self'.
# Previews are the API's own download links (same origin); Uppy's thumbnails are blob: URLs.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; frame-src 'self'; font-src 'self'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(prefix="/console", include_in_schema=False)


@cache
def _page() -> str:
    html = (PACKAGE_DIR / "index.html").read_text(encoding="utf-8")
    return html.replace("{{version}}", __version__)


@router.get("")
@router.get("/")
async def console_page() -> HTMLResponse:
    """The console's shell; its screens are drawn by `static/app.js` (`#/customers/…`)."""
    return HTMLResponse(_page(), headers=PAGE_HEADERS)


def _check_origin(request: Request) -> None:
    """A sign-in posted from another site's page is refused (login CSRF)."""
    origin = request.headers.get("origin")
    if origin is None:
        return
    own = f"{request.url.scheme}://{request.headers.get('host', '')}"
    if origin != own:
        raise Forbidden("Sign in from the console's own page", code="cross_origin")


def _secure(settings: Settings) -> bool:
    # Embedded dev mode serves plain http on a developer's machine; everywhere else the
    # cookies must never travel unencrypted.
    return not settings.embedded_mode


def _no_store() -> Response:
    return Response(status_code=204, headers={"Cache-Control": "no-store"})


def _started(pair: auth_sessions.TokenPair, settings: Settings) -> Response:
    """A 204 carrying the session's cookies (a fresh CSRF token with every new pair)."""
    response = _no_store()
    cookies.set_session(
        response,
        access=pair.access_token,
        refresh=pair.refresh_token,
        csrf=cookies.new_csrf_token(),
        max_age=int(settings.refresh_token_expire_days * 86400),
        secure=_secure(settings),
    )
    return response


@router.post("/session", status_code=204)
async def sign_in(
    credentials: LoginRequest,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    client: ClientDep,
) -> Response:
    """The API's login; the tokens go into HttpOnly cookies instead of the page."""
    _check_origin(request)
    pair = await auth_service.login(
        session,
        login=credentials.username,
        password=credentials.password,
        client=client,
        settings=settings,
    )
    return _started(pair, settings)


@router.post("/session/refresh", status_code=204)
async def refresh(
    request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep
) -> Response:
    """The API's refresh, from the refresh cookie: new access and refresh cookies."""
    cookies.check_csrf(request)
    token = request.cookies.get(cookies.REFRESH_COOKIE)
    if not token:
        raise Unauthorized("No console session", code="not_authenticated")
    pair = await auth_sessions.refresh(
        session, refresh_token=token, client=client, settings=settings
    )
    return _started(pair, settings)


@router.post("/session/logout", status_code=204)
async def sign_out(
    request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep
) -> Response:
    """The API's logout: the session ends server-side, then the cookies are cleared."""
    cookies.check_csrf(request)
    token = request.cookies.get(cookies.REFRESH_COOKIE)
    if token:
        await auth_sessions.logout(session, refresh_token=token, client=client)
    response = _no_store()
    cookies.clear_session(response, secure=_secure(settings))
    return response
