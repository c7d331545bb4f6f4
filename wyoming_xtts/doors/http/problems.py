"""Errors over HTTP: one JSON shape for every failure, OpenAI's, with the server's stable codes.

```json
{"error": {"message": "There is no voice named 'bob'. ...", "type": "invalid_request_error",
           "code": "voice-not-found", "param": "voice"}}
```
A speech failure carries the same `code` the Wyoming door sends in its `error` event
(core/errors.py); the codes only the HTTP door can produce are `HttpCode`.
"""

from enum import StrEnum
from http import HTTPStatus

from aiohttp import web

from ...core.errors import ErrorCode, SpeechError

_INVALID_REQUEST = "invalid_request_error"
_AUTHENTICATION = "authentication_error"
_PERMISSION = "permission_error"
_NOT_FOUND = "not_found_error"
_RATE_LIMIT = "rate_limit_error"
_SERVER = "server_error"


class HttpCode(StrEnum):
    """Stable codes of failures only the HTTP door has."""

    UNAUTHORIZED = "unauthorized"
    """--http-token is set and the request did not carry it."""

    CROSS_SITE = "cross-site"
    """A browser sent the request from another site's page: refused (cross-site forgery)."""

    NOT_FOUND = "not-found"
    """No such page, endpoint, upload or profile."""

    METHOD_NOT_ALLOWED = "method-not-allowed"
    """The endpoint exists but not for this HTTP method."""

    UNSUPPORTED_MEDIA_TYPE = "unsupported-media-type"
    """A JSON endpoint got a body that is not `application/json`."""

    MODEL_NOT_FOUND = "model_not_found"
    """The speech endpoint was asked for a model it does not have. Spelled as OpenAI spells
    it (not in this server's hyphenated style), so that code written against OpenAI's answer
    recognises ours."""

    VOICE_EXISTS = "voice-exists"
    """A new voice's name is taken (replace was not asked for)."""

    NOT_WRITABLE = "not-writable"
    """The voices directory cannot be written (mounted read-only)."""

    DISK_FULL = "disk-full"
    """The disk holding the voices directory (or the data directory, for a recording) is
    full; nothing was changed."""

    UPLOAD_LIMIT = "upload-limit"
    """Too many recordings are waiting to be saved; save or remove some first."""

    INTERNAL = "internal-error"
    """A fault in the server itself (logged with its traceback)."""


_SPEECH_STATUS: dict[ErrorCode, HTTPStatus] = {
    ErrorCode.VOICE_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.SPEAKER_NOT_FOUND: HTTPStatus.NOT_FOUND,
    ErrorCode.VOICE_UNUSABLE: HTTPStatus.UNPROCESSABLE_ENTITY,
    ErrorCode.EMPTY_TEXT: HTTPStatus.BAD_REQUEST,
    ErrorCode.TEXT_TOO_LONG: HTTPStatus.BAD_REQUEST,
    ErrorCode.LANGUAGE_UNSUPPORTED: HTTPStatus.BAD_REQUEST,
    ErrorCode.BAD_REQUEST: HTTPStatus.BAD_REQUEST,
    ErrorCode.TOO_LARGE: HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
    ErrorCode.SHUTTING_DOWN: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.TOO_MANY_CONNECTIONS: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorCode.TOO_MANY_REQUESTS: HTTPStatus.TOO_MANY_REQUESTS,
    ErrorCode.IDLE: HTTPStatus.REQUEST_TIMEOUT,
    ErrorCode.ENGINE_BUSY: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.SYNTHESIS_FAILED: HTTPStatus.INTERNAL_SERVER_ERROR,
    ErrorCode.PROVIDER_AUTH: HTTPStatus.BAD_GATEWAY,
    ErrorCode.PROVIDER_BALANCE: HTTPStatus.BAD_GATEWAY,
    ErrorCode.PROVIDER_REJECTED: HTTPStatus.BAD_GATEWAY,
    ErrorCode.PROVIDER_THROTTLED: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.PROVIDER_FAILED: HTTPStatus.BAD_GATEWAY,
    ErrorCode.PROVIDER_UNAVAILABLE: HTTPStatus.SERVICE_UNAVAILABLE,
    ErrorCode.PROVIDER_TIMEOUT: HTTPStatus.GATEWAY_TIMEOUT,
    ErrorCode.PROVIDER_BAD_AUDIO: HTTPStatus.BAD_GATEWAY,
}
"""HTTP status of each speech failure; a code missing here would fail `test_every_code_has_a_status`."""

_HTTP_STATUS: dict[HttpCode, HTTPStatus] = {
    HttpCode.UNAUTHORIZED: HTTPStatus.UNAUTHORIZED,
    HttpCode.CROSS_SITE: HTTPStatus.FORBIDDEN,
    HttpCode.NOT_FOUND: HTTPStatus.NOT_FOUND,
    HttpCode.METHOD_NOT_ALLOWED: HTTPStatus.METHOD_NOT_ALLOWED,
    HttpCode.UNSUPPORTED_MEDIA_TYPE: HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
    HttpCode.MODEL_NOT_FOUND: HTTPStatus.NOT_FOUND,
    HttpCode.VOICE_EXISTS: HTTPStatus.CONFLICT,
    HttpCode.NOT_WRITABLE: HTTPStatus.FORBIDDEN,
    HttpCode.DISK_FULL: HTTPStatus.INSUFFICIENT_STORAGE,
    HttpCode.UPLOAD_LIMIT: HTTPStatus.TOO_MANY_REQUESTS,
    HttpCode.INTERNAL: HTTPStatus.INTERNAL_SERVER_ERROR,
}


class HttpProblem(Exception):
    """A failure to answer with the JSON error shape."""

    def __init__(self, code: ErrorCode | HttpCode, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.param = param

    @property
    def status(self) -> HTTPStatus:
        """The HTTP status this failure is answered with."""
        if isinstance(self.code, HttpCode):
            return _HTTP_STATUS[self.code]
        return _SPEECH_STATUS[self.code]

    @classmethod
    def from_speech(cls, error: SpeechError, param: str | None = None) -> "HttpProblem":
        """The HTTP form of a failure the core reported."""
        return cls(error.code, error.message, param)

    def response(self) -> web.Response:
        """The error as an HTTP response."""
        status = self.status
        if status == HTTPStatus.UNAUTHORIZED:
            kind = _AUTHENTICATION
        elif status == HTTPStatus.FORBIDDEN:
            kind = _PERMISSION
        elif status == HTTPStatus.NOT_FOUND:
            kind = _NOT_FOUND
        elif status == HTTPStatus.TOO_MANY_REQUESTS:
            kind = _RATE_LIMIT
        elif status >= 500:
            kind = _SERVER
        else:
            kind = _INVALID_REQUEST
        body = {"message": self.message, "type": kind, "code": str(self.code), "param": self.param}
        return web.json_response({"error": body}, status=status)


def bad_request(message: str, param: str | None = None) -> HttpProblem:
    """A request whose fields are wrong: `bad-request`, 400."""
    return HttpProblem(ErrorCode.BAD_REQUEST, message, param)
