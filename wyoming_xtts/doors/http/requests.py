"""Reading a request's JSON body and fields, with a sentence for whatever is wrong."""

import json
from typing import Any

from aiohttp import web

from ...core.errors import ErrorCode
from .problems import HttpCode, HttpProblem, bad_request

MAX_JSON_BYTES = 1_000_000
"""Largest JSON body accepted (5000 characters of text are at most 20 KB)."""


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object; only `application/json` is read (see security.py)."""
    if request.content_type != "application/json":
        raise HttpProblem(
            HttpCode.UNSUPPORTED_MEDIA_TYPE,
            "Send the request body as JSON with Content-Type: application/json.",
        )
    raw = await _bounded_body(request)
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise bad_request(f"The request body is not valid JSON ({err}).") from None
    if not isinstance(body, dict):
        raise bad_request("The request body must be a JSON object.")
    return body


async def _bounded_body(request: web.Request) -> bytes:
    """The whole body, or `too-large` as soon as it is known to pass `MAX_JSON_BYTES`.

    One `read(n)` returns what has arrived so far, not n bytes: a body longer than the first
    network chunk was once parsed cut short ("Unterminated string"), so the body is read to
    its end, and refused before reading when its declared length is already too much.
    """
    if request.content_length is not None and request.content_length > MAX_JSON_BYTES:
        raise _too_large()
    raw = bytearray()
    while chunk := await request.content.read(MAX_JSON_BYTES + 1 - len(raw)):
        raw += chunk
        if len(raw) > MAX_JSON_BYTES:
            raise _too_large()
    return bytes(raw)


def _too_large() -> HttpProblem:
    return HttpProblem(
        ErrorCode.TOO_LARGE,
        f"The request body is larger than the {MAX_JSON_BYTES:,} bytes a JSON request may be.",
    )


def required_text(body: dict[str, Any], name: str, max_chars: int) -> str:
    """A non-empty string field, stripped."""
    value = body.get(name)
    if not isinstance(value, str) or not value.strip():
        raise bad_request(f"{name} must be a non-empty string.", name)
    if len(value) > max_chars:
        raise bad_request(f"{name} is longer than {max_chars} characters.", name)
    return value.strip()


def optional_text(body: dict[str, Any], name: str, max_chars: int) -> str | None:
    """A string field that may be missing, null or empty (None then)."""
    if body.get(name) in (None, ""):
        return None
    return required_text(body, name, max_chars)
