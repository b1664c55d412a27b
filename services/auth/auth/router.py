"""HTTP endpoints of the auth service; thin: parse, call the service, shape the reply."""

from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import select

from auth import service
from auth.exceptions import InvalidCredentials
from auth.models import users
from auth.runtime import runtime
from auth.schemas import LoginRequest, UserCreate, UserUpdate
from portal_common.errors import NotFound
from portal_common.http import read_object
from portal_common.identity import CurrentUser, StaffUser
from portal_common.listing import ListSpec, paginate

router = APIRouter(prefix="/api/auth", tags=["auth"])
internal = APIRouter(prefix="/internal", include_in_schema=False)

USERS = ListSpec(
    filters=(),
    search=(users.c.username, users.c.email),
    ordering={"username": users.c.username, "created_at": users.c.created_at},
    default_ordering=("-created_at",),
    tiebreak=users.c.id,
)


def _user_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > 18:
        raise NotFound()
    return int(raw)


@router.post(
    "/token/",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": LoginRequest.json_schema()}}}},
)
async def obtain_token(request: Request) -> dict[str, Any]:
    """Log in with username and password; answer a new token and who you are."""
    data = LoginRequest.validate(await read_object(request))
    address = request.state.identity.address or "unknown"
    # A failed attempt is committed too (the throttle counts it); the error
    # is raised only after that commit.
    async with runtime.transaction() as session:
        answer = await service.log_in(
            session,
            username=data["username"],
            password=data["password"],
            address=address,
            settings=runtime.settings,
        )
    if answer is None:
        raise InvalidCredentials()
    return answer


@router.post("/logout/")
async def logout(identity: CurrentUser) -> dict[str, str]:
    """Revoke the token this request was made with."""
    async with runtime.transaction() as session:
        if identity.token_hash:
            await service.revoke_token(session, key_hash=identity.token_hash)
    return {"message": "Successfully logged out"}


@router.get("/me/")
async def me(identity: CurrentUser) -> dict[str, Any]:
    """Who the token belongs to."""
    async with runtime.transaction() as session:
        user = await service.get_user(session, identity.user_id)
        client = await service.client_summary(session, user["client_id"])
    return {
        "id": user["id"],
        "username": user["username"],
        "email": user["email"],
        "is_staff": user["is_staff"],
        "client": client,
    }


@router.get("/users/")
async def list_users(request: Request, identity: StaffUser) -> dict[str, Any]:
    """List users (staff only)."""
    async with runtime.transaction() as session:
        page = await paginate(session, request, select(users), USERS, identity=identity)
    return page.body(service.user_body)


@router.post(
    "/users/",
    status_code=201,
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": UserCreate.json_schema()}}}},
)
async def create_user(request: Request, identity: StaffUser) -> dict[str, Any]:
    """Create a user (staff only); `password` is write-only."""
    data = UserCreate.validate(await read_object(request))
    async with runtime.transaction() as session:
        row = await service.create_user(session, runtime.directory, data)
    return service.user_body(row)


@router.get("/users/{user_id}/")
async def read_user(user_id: str, identity: StaffUser) -> dict[str, Any]:
    """Read one user (staff only)."""
    async with runtime.transaction() as session:
        return service.user_body(await service.get_user(session, _user_id(user_id)))


async def _update(request: Request, user_id: str, *, partial: bool) -> dict[str, Any]:
    data = UserUpdate.validate(await read_object(request), partial=partial)
    async with runtime.transaction() as session:
        row = await service.update_user(session, runtime.directory, _user_id(user_id), data)
    return service.user_body(row)


@router.patch(
    "/users/{user_id}/",
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": UserUpdate.json_schema()}}}},
)
async def patch_user(request: Request, user_id: str, identity: StaffUser) -> dict[str, Any]:
    """Change some of a user's fields (staff only); deactivating ends their sessions."""
    return await _update(request, user_id, partial=True)


@router.put("/users/{user_id}/")
async def put_user(request: Request, user_id: str, identity: StaffUser) -> dict[str, Any]:
    """Replace a user's fields (staff only)."""
    return await _update(request, user_id, partial=False)


@router.delete("/users/{user_id}/", status_code=204)
async def delete_user(user_id: str, identity: StaffUser) -> Response:
    """Delete a user (staff only); their tokens are revoked."""
    async with runtime.transaction() as session:
        await service.delete_user(session, _user_id(user_id))
    return Response(status_code=204)


@internal.post("/tokens/verify", dependencies=[Depends(runtime.check_internal)])
async def verify_token(request: Request) -> Response:
    """For the gateway: who holds a token. 404 when nobody does."""
    body = await read_object(request)
    key = body.get("token")
    if not isinstance(key, str):
        raise NotFound()
    async with runtime.transaction() as session:
        found = await service.identity_for_token(session, key)
    if found is None:
        raise NotFound()
    return JSONResponse(found)
