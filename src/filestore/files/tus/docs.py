"""What the tus routes answer, for the OpenAPI document: the request headers that select the
protocol, every status each route can give and the headers that carry the answer (tus answers
in headers, with empty bodies)."""

from __future__ import annotations

from typing import Any

from filestore.errors import error_responses
from filestore.files.tus.protocol import DRAFT_INTEROP_VERSION, FILE_ID_HEADER, TUS_VERSION

TUS_HEADERS: dict[str, Any] = {
    "parameters": [
        {
            "name": "Tus-Resumable",
            "in": "header",
            # Not required: a client of the IETF draft sends Upload-Draft-Interop-Version.
            "required": False,
            "schema": {"type": "string", "enum": [TUS_VERSION]},
            "description": f"`{TUS_VERSION}`, or send `Upload-Draft-Interop-Version: "
            f"{DRAFT_INTEROP_VERSION}`; neither is a 412",
        }
    ]
}


def _header(description: str, schema_type: str = "string") -> dict[str, Any]:
    return {"description": description, "schema": {"type": schema_type}}


_RESUMABLE = {"Tus-Resumable": {**_header(f"`{TUS_VERSION}`"), "required": True}}
_OFFSET = _header("Bytes stored so far: where to resume", "integer")
_EXPIRES = _header("When an unfinished upload is dropped (RFC 9110 date)")
_FILE_ID = _header("The stored file's id, once the last byte is in", "integer")

_PRECONDITION = (412, "Neither `Tus-Resumable: 1.0.0` nor the draft's interop version")
_NOT_FOUND = (404, "No such upload (expired, terminated, someone else's)")
_GONE = (410, "Verification rejected the upload (`code` says why)")

CREATE: dict[int | str, dict[str, Any]] = {
    201: {
        "description": "Created: `Location` is the upload's URL; with a body, `Upload-Offset` "
        "says how much of it was kept",
        "headers": {
            **_RESUMABLE,
            "Location": {**_header("The upload's URL"), "required": True},
            "Upload-Expires": _EXPIRES,
            "Upload-Offset": _OFFSET,
            FILE_ID_HEADER: _FILE_ID,
        },
    },
    **error_responses(
        (400, "Malformed tus header"),
        (403, "The same refusals as POST /files/upload"),
        (404, "customer_id or ticket_id not found"),
        (409, "A body sent with it did not fit the upload"),
        (410, "A body sent with it completed the upload and verification rejected it"),
        _PRECONDITION,
        (413, "Upload-Length over MAX_FILE_SIZE, or the body past it"),
        (415, "Extension not allowed"),
        (422, "A bad Upload-Metadata field (the form's rules)"),
        (423, "A body sent with it is still being appended by another request"),
        (460, "The body does not match Upload-Checksum (nothing kept)"),
    ),
}

OFFSET: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "Where to resume: `Upload-Offset`, and `Upload-Length` or "
        "`Upload-Defer-Length: 1` (no body)",
        "headers": {
            **_RESUMABLE,
            "Upload-Offset": {**_OFFSET, "required": True},
            "Upload-Length": _header("The upload's whole size", "integer"),
            "Upload-Defer-Length": _header("`1` while the size is not known yet"),
            "Upload-Metadata": _header("The metadata it was created with"),
            "Upload-Expires": _EXPIRES,
            FILE_ID_HEADER: _FILE_ID,
            "Cache-Control": _header("`no-store`"),
        },
    },
    **error_responses(_NOT_FOUND, _GONE, _PRECONDITION),
}

APPEND: dict[int | str, dict[str, Any]] = {
    204: {
        "description": "Appended; `Upload-Offset` is the new offset. On the last byte the "
        f"file was verified and stored: `{FILE_ID_HEADER}` names it",
        "headers": {
            **_RESUMABLE,
            "Upload-Offset": _OFFSET,
            "Upload-Expires": _EXPIRES,
            FILE_ID_HEADER: _FILE_ID,
        },
    },
    **error_responses(
        (400, "Upload-Offset missing, or a malformed tus header"),
        (403, "The same refusals as POST /files/upload"),
        _NOT_FOUND,
        (409, "Upload-Offset is not the upload's offset (the body says which)"),
        _GONE,
        _PRECONDITION,
        (413, "The body goes past Upload-Length or MAX_FILE_SIZE"),
        (415, "Content-Type is not application/offset+octet-stream"),
        (422, "Verification refused the file (the form's rules)"),
        (423, "Another request is appending to this upload"),
        (460, "The body does not match Upload-Checksum (nothing kept)"),
    ),
}

STATE: dict[int | str, dict[str, Any]] = {**error_responses(_NOT_FOUND)}

TERMINATE: dict[int | str, dict[str, Any]] = {
    204: {"description": "Terminated", "headers": _RESUMABLE},
    **error_responses(_NOT_FOUND, _PRECONDITION, (423, "A request is appending to it right now")),
}

OPTIONS: dict[int | str, dict[str, Any]] = {
    204: {
        "description": "What this server speaks",
        "headers": {
            name: {**_header(name), "required": True}
            for name in ("Tus-Resumable", "Tus-Version", "Tus-Extension", "Tus-Max-Size")
        },
    }
}
