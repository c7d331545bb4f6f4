"""An OpenAI-compatible speech endpoint: what Open WebUI, n8n and the `openai` client speak.

- `POST /v1/audio/speech` {model, input, voice, response_format, speed}: the audio, streamed
  as it is made (first bytes before the reply is finished). `voice` names a voice profile or
  a built-in speaker, as over Wyoming (`NAME@LANG` too); `model` is any of `/v1/models`.
- `GET /v1/models`, `GET /v1/audio/voices`: what there is to ask for.

The text goes through the same pipeline as a Wyoming request (clean-up, segmentation,
language choice, babble guard); errors have OpenAI's shape with this server's stable codes.
"""

from dataclasses import replace
from typing import Any

from aiohttp import web

from ...core.errors import SpeechError
from ...core.generation import GENERATION_LIMITS, OutOfRangeError
from ...core.service import Core
from .encoding import FORMATS
from .problems import HttpCode, HttpProblem, bad_request
from .requests import json_body, required_text
from .speech import SpeechStreams

MODELS = ("xtts-v2", "xtts", "xtts_v2", "tts-1", "tts-1-hd", "gpt-4o-mini-tts")
"""Model names accepted (in any case): there is one model, asked for under the names people
write for XTTS-v2 and under those OpenAI clients send by default."""

_DEFAULT_FORMAT = "mp3"  # OpenAI's default
_OWNER = "wyoming-xtts"


class OpenAiSpeech:
    """The `/v1` endpoints, over one core."""

    def __init__(self, core: Core, speech: SpeechStreams) -> None:
        self._core = core
        self._speech = speech

    def routes(self) -> list[web.RouteDef]:
        """The endpoints' routes."""
        return [
            web.post("/v1/audio/speech", self.speech),
            web.get("/v1/models", self.models),
            web.get("/v1/audio/voices", self.voices),
        ]

    async def speech(self, request: web.Request) -> web.StreamResponse:
        """Speak `input` in `voice`."""
        body = await json_body(request)
        model = body.get("model", MODELS[0])
        if not isinstance(model, str) or model.lower() not in MODELS:
            raise HttpProblem(
                HttpCode.MODEL_NOT_FOUND,
                f"There is no model {str(model)[:40]!r} here; use one of {', '.join(MODELS)}.",
                "model",
            )
        text = body.get("input")
        if not isinstance(text, str):
            raise bad_request("input must be the text to speak, as a string.", "input")
        fmt_name = body.get("response_format", _DEFAULT_FORMAT)
        fmt = FORMATS.get(fmt_name) if isinstance(fmt_name, str) else None
        if fmt is None:
            raise bad_request(
                f"response_format must be one of {', '.join(FORMATS)}, not {str(fmt_name)[:20]!r}.",
                "response_format",
            )
        if body.get("stream_format", "audio") != "audio":
            raise bad_request(
                "Only stream_format 'audio' is offered: the audio itself, streamed.",
                "stream_format",
            )
        voice = await self._voice(body.get("voice"))
        speed = body.get("speed")
        if speed is not None:
            try:
                speed = GENERATION_LIMITS["speed"].check("speed", speed)
            except OutOfRangeError as err:
                raise bad_request(str(err), "speed") from None
            voice = replace(voice, generation=replace(voice.generation, speed=float(speed)))
        return await self._speech.respond(request, text, voice, fmt)

    async def models(self, request: web.Request) -> web.Response:
        """OpenAI's model list shape."""
        return web.json_response(
            {
                "object": "list",
                "data": [
                    {"id": model, "object": "model", "created": 0, "owned_by": _OWNER}
                    for model in MODELS
                ],
            }
        )

    async def voices(self, request: web.Request) -> web.Response:
        """Every voice `voice` may name: profiles first, then built-in speakers."""
        listings = await self._core.catalogue.list_voices()
        return web.json_response(
            {
                "voices": [
                    {
                        "id": listing.name,
                        "name": listing.name,
                        "description": listing.description,
                        "languages": list(listing.languages),
                        "builtin": listing.builtin,
                    }
                    for listing in listings
                ]
            }
        )

    async def _voice(self, requested: Any) -> Any:
        # Newer OpenAI clients may send {"id": "..."} for a custom voice.
        if isinstance(requested, dict):
            requested = requested.get("id")
        name = required_text({"voice": requested}, "voice", 200)
        try:
            return await self._core.catalogue.resolve_voice(name)
        except SpeechError as error:
            raise HttpProblem.from_speech(error, "voice") from None
