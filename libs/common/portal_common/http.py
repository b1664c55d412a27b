"""Reading request bodies the way Django REST Framework's parsers do.

JSON and both form encodings are accepted; anything else is 415. A body that
is not valid JSON is 400 with DRF's `JSON parse error - …` detail, and a body
over the limit is 413, before any of it is parsed.
"""

import json
from typing import Any
from uuid import UUID

from fastapi import Request

from portal_common.errors import (
    NotFound,
    ParseError,
    PayloadTooLarge,
    UnsupportedMediaType,
    ValidationFailed,
)

MAX_BODY_BYTES = 1024 * 1024


async def read_body(request: Request) -> Any:
    """The parsed body: a JSON value, or a dict for form data; `{}` when empty."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise PayloadTooLarge()
    raw = b""
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > MAX_BODY_BYTES:
            raise PayloadTooLarge()

    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";")[0].strip().lower()
    if not raw:
        return {}
    if media_type == "application/json":
        try:
            return json.loads(raw)
        except (ValueError, UnicodeDecodeError) as error:
            raise ParseError(f"JSON parse error - {error}") from None
        except RecursionError:
            raise ParseError("JSON parse error - nested too deeply") from None
    if media_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        request._body = raw  # let Starlette's form parser read what we already consumed
        form = await request.form()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    raise UnsupportedMediaType(media_type or content_type)


async def read_object(request: Request) -> dict[str, Any]:
    """The body as a JSON object, with DRF's message when it is another JSON type."""
    data = await read_body(request)
    if not isinstance(data, dict):
        kind = {list: "list", str: "str", int: "int", float: "float", bool: "bool"}.get(
            type(data), type(data).__name__
        )
        raise ValidationFailed.non_field(f"Invalid data. Expected a dictionary, but got {kind}.")
    return data


def path_uuid(raw: str) -> UUID:
    """An id from the URL path; a malformed one is "Not found." like an unknown one."""
    try:
        return UUID(raw)
    except ValueError:
        raise NotFound() from None
