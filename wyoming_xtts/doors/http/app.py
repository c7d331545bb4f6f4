"""The HTTP front door's application: the studio page, its API and the OpenAI endpoint.

Every path is relative to the door's root, which Home Assistant's ingress serves under a
prefix of its own: the page only ever uses relative URLs, so it works under any prefix.
"""

import logging
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from aiohttp import web

from ...core.service import Core
from .openai_speech import OpenAiSpeech
from .problems import HttpCode, HttpProblem
from .security import Guard, Handler
from .speech import SpeechStreams
from .studio import Studio
from .uploads import UploadLimits, UploadStore

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpDoorSettings:
    """The HTTP door's share of the server settings."""

    token: str | None
    """--http-token: the secret every request carries; None when none is asked."""

    max_text_chars: int
    """Longest text one speech request speaks (--max-text-chars, as on Wyoming)."""

    uploads_dir: Path
    """Where recordings wait until they are saved into a voice (in the data directory)."""

    max_speech_streams: int = 8
    """Speech responses running at once; more are answered 429 `too-many-requests`."""

    upload_limits: UploadLimits = field(default_factory=UploadLimits)
    """Bounds on recordings sent to the studio."""


def build_app(core: Core, settings: HttpDoorSettings) -> web.Application:
    """The application serving one core."""
    guard = Guard(settings.token)
    speech = SpeechStreams(core, settings.max_speech_streams, settings.max_text_chars)
    studio = Studio(core, UploadStore(settings.uploads_dir, settings.upload_limits), speech)
    static = Path(str(resources.files(__package__).joinpath("static")))
    app = web.Application(
        middlewares=[guard.middleware, _json_errors],
        client_max_size=settings.upload_limits.max_bytes + 1_000_000,
    )

    async def page(request: web.Request) -> web.FileResponse:
        if not guard.authenticated(request):
            return web.FileResponse(static / "login.html", status=401)
        return web.FileResponse(static / "index.html")

    async def health(request: web.Request) -> web.Response:
        """Whether the server can speak (the add-on watchdog asks): 200, or 503 when not."""
        state = core.speaking.health()
        body = {"healthy": state.healthy, "readiness": state.readiness.value}
        if state.detail:
            body["detail"] = state.detail
        return web.json_response(body, status=200 if state.healthy else 503)

    app.add_routes(
        [
            web.get("/", page),
            web.get("/health", health),
            web.post("/login", guard.login),
            web.static("/static", static, append_version=False),
            *studio.routes(),
            *OpenAiSpeech(core, speech).routes(),
        ]
    )
    return app


@web.middleware
async def _json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure in the JSON error shape, unknown paths and server faults included."""
    try:
        return await handler(request)
    except HttpProblem:
        raise
    except web.HTTPNotFound:
        raise HttpProblem(
            HttpCode.NOT_FOUND, f"There is nothing at {request.path[:100]}."
        ) from None
    except web.HTTPMethodNotAllowed as err:
        raise HttpProblem(
            HttpCode.METHOD_NOT_ALLOWED,
            f"{request.path[:100]} takes {', '.join(sorted(err.allowed_methods))}, "
            f"not {request.method}.",
        ) from None
    except web.HTTPException:
        raise  # redirects (the login form)
    except Exception:
        _LOGGER.exception("Fault while answering %s %s", request.method, request.path[:100])
        raise HttpProblem(
            HttpCode.INTERNAL, "The server failed to answer; its log says why."
        ) from None
