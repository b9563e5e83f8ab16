"""`/auth` (login, refresh, logout, setup, passwords, me) and `/users` (administration)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from filestore.auth import credentials
from filestore.auth import reset as reset_service
from filestore.auth import service as auth_service
from filestore.auth import sessions as auth_sessions
from filestore.auth.models import Role
from filestore.auth.schemas import (
    ChangePasswordRequest,
    LoginRequest,
    PasswordResetOut,
    RefreshRequest,
    ResetPasswordRequest,
    SetupRequest,
    TokenResponse,
    UserCreate,
    UserOut,
    UserUpdate,
)
from filestore.deps import (
    AdminUser,
    ClientDep,
    IdPath,
    ReadingDep,
    SessionDep,
    SettingsDep,
    StaffUser,
    StandaloneUser,
)
from filestore.errors import ALWAYS, BadRequest, Unprocessable, error_responses
from filestore.schemas import DbId, PageOffset, SearchText

router = APIRouter(prefix="/auth", tags=["auth"], responses=error_responses(422, *ALWAYS))
users_router = APIRouter(
    prefix="/users", tags=["users"], responses=error_responses(401, 403, 422, *ALWAYS)
)

_LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": LoginRequest.model_json_schema()},
            "application/x-www-form-urlencoded": {
                "schema": {
                    "type": "object",
                    "required": ["username", "password"],
                    "properties": {
                        "username": {"type": "string"},
                        "password": {"type": "string", "format": "password"},
                        "grant_type": {"type": "string", "enum": ["password"]},
                    },
                }
            },
        },
    }
}
_WEAK = error_responses((422, "Invalid body, or the password breaks a rule (`code` says which)"))
_LOCKED = error_responses((429, "Too many failed attempts; see `Retry-After`"))


async def _no_store(response: Response) -> None:
    """Responses that carry tokens or the caller's profile: no cache may keep them."""
    response.headers["Cache-Control"] = "no-store"


NO_STORE = [Depends(_no_store)]


async def _read_login(request: Request) -> LoginRequest:
    """The credentials from a JSON body or an OAuth2 password form (Swagger's Authorize)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            form = await request.form()
            return LoginRequest(
                username=str(form.get("username", "")), password=str(form.get("password", ""))
            )
        return LoginRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        details = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        raise Unprocessable(details) from exc
    except ValueError as exc:
        raise BadRequest("Send JSON {username, password} or an OAuth2 password form") from exc


def _tokens(pair: auth_sessions.TokenPair) -> TokenResponse:
    return TokenResponse(
        access_token=pair.access_token, refresh_token=pair.refresh_token, expires_in=pair.expires_in
    )


@router.post(
    "/login",
    response_model=TokenResponse,
    dependencies=NO_STORE,
    openapi_extra=_LOGIN_BODY,
    responses={**error_responses((401, "Incorrect username or password")), **_LOCKED},
)
async def login(
    request: Request, session: SessionDep, settings: SettingsDep, client: ClientDep
) -> TokenResponse:
    """Exchange a username (or a customer's e-mail) and password for access + refresh tokens."""
    credentials = await _read_login(request)
    pair = await auth_service.login(
        session,
        login=credentials.username,
        password=credentials.password,
        client=client,
        settings=settings,
    )
    return _tokens(pair)


@router.post(
    "/refresh",
    response_model=TokenResponse,
    dependencies=NO_STORE,
    responses=error_responses((401, "Unknown, expired, revoked or already used refresh token")),
)
async def refresh(
    body: RefreshRequest, session: SessionDep, settings: SettingsDep, client: ClientDep
) -> TokenResponse:
    """A new token pair; the token sent is spent. Sending a spent one again ends its session."""
    pair = await auth_sessions.refresh(
        session, refresh_token=body.refresh_token, client=client, settings=settings
    )
    return _tokens(pair)


@router.post("/logout", status_code=status.HTTP_204_NO_CONTENT)
async def logout(body: RefreshRequest, session: SessionDep, client: ClientDep) -> Response:
    """End the session of this refresh token: its refresh and access tokens stop working."""
    await auth_sessions.logout(session, refresh_token=body.refresh_token, client=client)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/setup",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses={**error_responses((409, "An admin exists already")), **_WEAK},
)
async def setup(body: SetupRequest, session: SessionDep, client: ClientDep) -> Any:
    """Create the first admin of a new installation (no token; only while there is no admin)."""
    return await auth_service.setup(session, setup_in=body, client=client)


@router.get("/me", response_model=UserOut, dependencies=NO_STORE, responses=error_responses(401))
async def me(reading: ReadingDep) -> Any:
    """The user this token belongs to."""
    user = await auth_service.principal_for_token(reading.session, reading.claims)
    if user is None:
        raise auth_service.token_refused()
    return reading.acting(user)


@router.post(
    "/change-password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={
        **error_responses(
            (400, "Wrong current password"), 401, (409, "The account changed meanwhile")
        ),
        **_WEAK,
        **_LOCKED,
    },
)
async def change_password(
    body: ChangePasswordRequest,
    user: StandaloneUser,  # no connection held while the passwords hash
    session: SessionDep,
    settings: SettingsDep,
    client: ClientDep,
) -> Response:
    """Change your password; every token you held stops working (log in again)."""
    await credentials.change_password(
        session,
        user_id=user.id,
        current_password=body.current_password,
        new_password=body.new_password,
        client=client,
        settings=settings,
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/reset-password",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**error_responses((400, "Invalid, used or expired reset token")), **_WEAK},
)
async def reset_password(
    body: ResetPasswordRequest, session: SessionDep, client: ClientDep
) -> Response:
    """Choose a new password with a reset token (no login needed); every old token stops working."""
    await reset_service.reset_password(
        session, token=body.token, new_password=body.new_password, client=client
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)


_RESET_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Choose a password</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<style>body{font-family:sans-serif;max-width:26rem;margin:3rem auto;padding:0 1rem}
input,button{font-size:1rem;width:100%;padding:.5rem;margin:.3rem 0;box-sizing:border-box}</style>
</head><body><h1>Choose a password</h1>
<form id="f"><label>New password (at least 8 characters)
<input id="p" type="password" autocomplete="new-password" required minlength="8"></label>
<button>Save</button></form><p id="m" role="status"></p>
<script>
const token = new URLSearchParams(location.hash.slice(1)).get("token");
history.replaceState(null, "", location.pathname);
document.getElementById("f").addEventListener("submit", async (e) => {
  e.preventDefault();
  const r = await fetch("reset-password", {method: "POST",
    headers: {"Content-Type": "application/json"},
    body: JSON.stringify({token, new_password: document.getElementById("p").value})});
  const m = document.getElementById("m");
  if (r.status === 204) {
    m.textContent = "Your password is set. You can log in now."; e.target.remove();
  } else {
    const b = await r.json();
    m.textContent = typeof b.detail === "string" ? b.detail : "Invalid password.";
  }
});
</script></body></html>
"""


@router.get("/reset-password", include_in_schema=False)
async def reset_password_page() -> HTMLResponse:
    """The page a reset link opens; the token stays in the URL fragment, out of server logs."""
    return HTMLResponse(
        _RESET_PAGE,
        headers={
            "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; "
            "style-src 'unsafe-inline'; connect-src 'self'; form-action 'none'; "
            "frame-ancestors 'none'",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-store",
        },
    )


@users_router.post(
    "",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses={**error_responses((409, "Username or e-mail taken")), **_WEAK},
)
async def create_user(
    user_in: UserCreate, session: SessionDep, admin: AdminUser, client: ClientDep
) -> Any:
    """Create a user (admin only); a customer user is linked to one customer."""
    return await auth_service.create(session, user_in=user_in, actor_id=admin.id, client=client)


@users_router.get("", response_model=list[UserOut])
async def list_users(
    session: SessionDep,
    _: AdminUser,
    role: Role | None = None,
    customer_id: Annotated[DbId | None, Query()] = None,
    email: Annotated[SearchText | None, Query()] = None,
    is_active: bool | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
    offset: Annotated[PageOffset, Query()] = 0,
) -> Any:
    """Users, by id, optionally filtered (admin only)."""
    return await auth_service.list_users(
        session,
        role=role,
        customer_id=customer_id,
        email=email,
        is_active=is_active,
        limit=limit,
        offset=offset,
    )


@users_router.get("/{user_id}", response_model=UserOut, responses=error_responses(404))
async def get_user(user_id: IdPath, session: SessionDep, _: AdminUser) -> Any:
    """One user (admin only)."""
    return await auth_service.get_or_404(session, user_id)


@users_router.patch(
    "/{user_id}",
    response_model=UserOut,
    responses=error_responses(404, (409, "Would leave no active admin")),
)
async def update_user(
    user_id: IdPath, changes: UserUpdate, session: SessionDep, admin: AdminUser, client: ClientDep
) -> Any:
    """Change a user's role, active flag or customer (admin only). A role or customer change, or
    a deactivation, ends every session and token of that user at once."""
    return await auth_service.update(
        session, user_id=user_id, changes=changes, actor_id=admin.id, client=client
    )


@users_router.post(
    "/{user_id}/password-reset",
    response_model=PasswordResetOut,
    dependencies=NO_STORE,
    responses=error_responses(
        (403, "Staff resetting a non-customer user"),
        404,
        (503, "The e-mail could not be sent, or the database is unavailable"),
    ),
)
async def issue_password_reset(
    user_id: IdPath, session: SessionDep, actor: StaffUser, settings: SettingsDep, client: ClientDep
) -> PasswordResetOut:
    """A single-use reset link for a user (admin; staff for customer users). With SMTP set up
    it is e-mailed to the user and not shown here."""
    issued = await reset_service.issue_for_user(
        session, user_id=user_id, actor=actor, client=client, settings=settings
    )
    # The mail goes out only once its token exists: a failed commit sends no dead link.
    return await reset_service.commit_and_hand_over(session, settings, issued)
