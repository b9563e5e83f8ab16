"""`/auth` (login, me) and `/users` (admin creates users)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from pydantic import ValidationError

from filestore.auth import service as auth_service
from filestore.auth.schemas import LoginRequest, TokenResponse, UserCreate, UserOut
from filestore.auth.security import create_access_token
from filestore.deps import AdminUser, CurrentUser, SessionDep, SettingsDep
from filestore.errors import BadRequest, Unprocessable

router = APIRouter(prefix="/auth", tags=["auth"])
users_router = APIRouter(prefix="/users", tags=["users"])

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


async def _read_login(request: Request) -> LoginRequest:
    """The credentials from a JSON body or an OAuth2 password form (Swagger's Authorize)."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    try:
        if content_type in {"application/x-www-form-urlencoded", "multipart/form-data"}:
            form = await request.form()
            return LoginRequest(username=str(form.get("username", "")), password=str(form.get("password", "")))
        return LoginRequest.model_validate_json(await request.body())
    except ValidationError as exc:
        details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        raise Unprocessable(details) from exc
    except ValueError as exc:
        raise BadRequest("Send JSON {username, password} or an OAuth2 password form") from exc


@router.post(
    "/login",
    response_model=TokenResponse,
    openapi_extra=_LOGIN_BODY,
    responses={401: {"description": "Incorrect username or password"}},
)
async def login(request: Request, session: SessionDep, settings: SettingsDep) -> TokenResponse:
    """Exchange a username (or a customer's e-mail) and password for a bearer token."""
    credentials = await _read_login(request)
    user = await auth_service.authenticate(
        session, username=credentials.username, password=credentials.password
    )
    token = create_access_token(
        user_id=user.id,
        token_version=user.token_version,
        secret=settings.jwt_secret_key,
        expires_minutes=settings.access_token_expire_minutes,
    )
    return TokenResponse(access_token=token, expires_in=settings.access_token_expire_minutes * 60)


@router.get("/me", response_model=UserOut)
async def me(user: CurrentUser) -> Any:
    """The user this token belongs to."""
    return user


@users_router.post(
    "",
    response_model=UserOut,
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "Username or e-mail taken"}},
)
async def create_user(user_in: UserCreate, session: SessionDep, _: AdminUser) -> Any:
    """Create a user (admin only); a customer user is linked to one customer."""
    return await auth_service.create(session, user_in=user_in)
