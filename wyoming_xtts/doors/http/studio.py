"""The voice studio's API: the page (static/) asks these to list, make, tune and remove voices.

Everything it changes goes through the core's profile writer, the same one `voice add`
uses, so the Wyoming door offers a new voice at its next `describe` and speaks it at once.
Listening uses the same speaking service as every other request (speech.py).
"""

import asyncio
import tomllib
from dataclasses import fields, replace
from importlib import resources
from typing import Any

from aiohttp import BodyPartReader, web

from ... import __version__
from ...core.audio import MIN_CLIP_SECONDS, RECOMMENDED_CLIP_SECONDS
from ...core.clip_preparation import ClipPreparationError, PreparedClip, prepare_clip
from ...core.errors import ErrorCode, SpeechError
from ...core.generation import GENERATION_LIMITS, GenerationSettings, OutOfRangeError
from ...core.profiles import (
    DiskFullError,
    ProfileError,
    ProfileExistsError,
    ProfileNotFoundError,
)
from ...core.service import Core
from ...core.voices import Voice
from ...text.languages import XTTS_LANGUAGES, normalize_language
from .encoding import FORMATS
from .problems import HttpCode, HttpProblem, bad_request
from .requests import json_body, optional_text, required_text
from .speech import SpeechStreams
from .studio_views import builtin_view, generation_ranges, profile_view, upload_view
from .uploads import Upload, UploadStore

_MAX_DESCRIPTION = 200
_PREVIEW_FORMAT = FORMATS["mp3"]  # plays in every browser's <audio>, phones included


class Studio:
    """The studio's endpoints, over one core."""

    def __init__(self, core: Core, uploads: UploadStore, speech: SpeechStreams) -> None:
        self._core = core
        self._uploads = uploads
        self._speech = speech
        data = tomllib.loads(resources.files(__package__).joinpath("studio.toml").read_text())
        self._language_names: dict[str, str] = data["languages"]
        self._sentences: dict[str, list[str]] = data["sentences"]

    def routes(self) -> list[web.RouteDef]:
        """The studio's API routes (relative to the door's root)."""
        return [
            web.get("/api/studio", self.describe),
            web.get("/api/voices", self.list_voices),
            web.post("/api/voices", self.create_voice),
            web.patch("/api/voices/{name}", self.update_voice),
            web.delete("/api/voices/{name}", self.remove_voice),
            web.post("/api/voices/{name}/styles", self.add_style),
            web.delete("/api/voices/{name}/styles/{style}", self.remove_style),
            web.put("/api/default-voice", self.make_default),
            web.post("/api/uploads", self.upload),
            web.get("/api/uploads/{id}/audio", self.upload_audio),
            web.delete("/api/uploads/{id}", self.remove_upload),
            web.get("/api/speech", self.speak),
        ]

    async def describe(self, request: web.Request) -> web.Response:
        """What the page needs to draw itself: limits, languages, the default voice."""
        store = self._core.profiles
        reason = await asyncio.to_thread(store.not_writable_reason)
        default = await self._default_voice_name()
        limits = self._uploads.limits
        return web.json_response(
            {
                "program": {
                    "name": "wyoming-xtts",
                    "version": __version__,
                    "engine": self._core.program.description,
                },
                "writable": reason is None,
                "not_writable_reason": reason,
                "languages": [
                    {"code": code, "name": self._language_names.get(code, code)}
                    for code in XTTS_LANGUAGES
                    if code in self._core.catalogue.languages
                ],
                "default_voice": default,
                "default_fixed": self._core.catalogue.fixed_default is not None,
                "limits": {
                    "upload_bytes": limits.max_bytes,
                    "upload_seconds": limits.max_seconds,
                    "clips_per_voice": limits.clips_per_voice,
                    "clip_min_s": MIN_CLIP_SECONDS,
                    "clip_best_s": list(RECOMMENDED_CLIP_SECONDS),
                    "record_max_s": RECOMMENDED_CLIP_SECONDS[1],
                    "text_chars": self._speech.max_text_chars,
                },
                "generation": generation_ranges(),
                "sentences": self._sentences,
            }
        )

    async def list_voices(self, request: web.Request) -> web.Response:
        """Every profile (broken ones with their reasons), then the built-in speakers."""
        return web.json_response({"voices": await self._voice_views()})

    async def create_voice(self, request: web.Request) -> web.Response:
        """A new profile from checked uploads."""
        body = await json_body(request)
        await self._require_writable()
        name = required_text(body, "name", 64)
        description = optional_text(body, "description", _MAX_DESCRIPTION)
        languages = _languages(body.get("languages", ["en"]))
        uploads, clips = await self._clips_from(body)
        replace_existing = body.get("replace", False) is True
        await self._change(
            self._core.profiles.create, name, clips, description, languages, replace_existing
        )
        await self._used_up(uploads)
        return web.json_response(await self._voice_view(name), status=201)

    async def add_style(self, request: web.Request) -> web.Response:
        """A speaking style (Home Assistant's "speaker") for a profile, from checked uploads."""
        name = request.match_info["name"]
        body = await json_body(request)
        await self._require_writable()
        style = required_text(body, "style", 64)
        uploads, clips = await self._clips_from(body)
        replace_existing = body.get("replace", False) is True
        await self._change(self._core.profiles.add_style, name, style, clips, replace_existing)
        await self._used_up(uploads)
        return web.json_response(await self._voice_view(name), status=201)

    async def remove_style(self, request: web.Request) -> web.Response:
        """Delete a speaking style of a profile."""
        await self._require_writable()
        name, style = request.match_info["name"], request.match_info["style"]
        await self._change(self._core.profiles.remove_style, name, style)
        return web.Response(status=204)

    async def update_voice(self, request: web.Request) -> web.Response:
        """Change a profile's description, languages or sampling settings."""
        name = request.match_info["name"]
        body = await json_body(request)
        await self._require_writable()
        changes: dict[str, Any] = {}
        if "description" in body:
            # Empty or null: no description of its own, the name is shown.
            changes["description"] = optional_text(body, "description", _MAX_DESCRIPTION)
        if "languages" in body:
            changes["languages"] = _languages(body["languages"])
        if "synthesis" in body:
            changes["synthesis"] = _synthesis_changes(body["synthesis"])
        if not changes:
            raise bad_request("Nothing to change: send description, languages or synthesis.")
        await self._change(self._core.profiles.update, name, changes)
        return web.json_response(await self._voice_view(name))

    async def remove_voice(self, request: web.Request) -> web.Response:
        """Delete a profile and its clips."""
        await self._require_writable()
        await self._change(self._core.profiles.remove, request.match_info["name"])
        return web.Response(status=204)

    async def make_default(self, request: web.Request) -> web.Response:
        """Mark the voice used by requests that name none."""
        body = await json_body(request)
        await self._require_writable()
        name = required_text(body, "voice", 64)
        await self._change(self._core.profiles.make_default, name)
        return web.json_response({"default_voice": await self._default_voice_name()})

    async def upload(self, request: web.Request) -> web.Response:
        """Receive one recording (multipart field `clip`), check and clean it, say what it is."""
        if not request.content_type.startswith("multipart/"):
            raise HttpProblem(
                HttpCode.UNSUPPORTED_MEDIA_TYPE,
                "Send the recording as multipart/form-data in a field named clip.",
            )
        reader = await request.multipart()
        part = await reader.next()
        if not isinstance(part, BodyPartReader) or part.name != "clip":
            raise bad_request("Send the recording in a form field named clip.", "clip")
        path = await self._uploads.receive(part)
        upload = await asyncio.to_thread(self._uploads.check, path)
        return web.json_response(upload_view(upload), status=201)

    async def upload_audio(self, request: web.Request) -> web.Response:
        """The cleaned recording, to listen to before saving."""
        upload = self._uploads.get(request.match_info["id"])
        wav = await asyncio.to_thread(self._uploads.prepared_wav, upload)
        return web.Response(body=wav, content_type="audio/wav")

    async def remove_upload(self, request: web.Request) -> web.Response:
        """Drop a recording that will not be saved."""
        self._uploads.get(request.match_info["id"])
        await self._uploads.remove(request.match_info["id"])
        return web.Response(status=204)

    async def speak(self, request: web.Request) -> web.StreamResponse:
        """`GET api/speech?voice=&text=[&temperature=…]`: a sentence in a voice, as MP3, streamed
        for an `<audio>` element; given settings override the voice's saved ones."""
        query = request.query
        text = query.get("text", "")
        voice = await _resolve(self._core, query.get("voice") or None, query.get("style") or None)
        overrides: dict[str, Any] = {}
        for field in fields(GenerationSettings):
            raw = query.get(field.name, "")
            if raw != "":
                overrides[field.name] = _number(field.name, raw)
        if overrides:
            voice = replace(voice, generation=replace(voice.generation, **overrides))
        return await self._speech.respond(request, text, voice, _PREVIEW_FORMAT)

    def _uploads_named(self, body: dict[str, Any]) -> list[Upload]:
        ids = body.get("uploads")
        if not isinstance(ids, list) or not ids or not all(isinstance(i, str) for i in ids):
            raise bad_request("uploads must list the ids of one or more recordings.", "uploads")
        if len(ids) > self._uploads.limits.clips_per_voice:
            raise bad_request(
                f"A voice is made of at most {self._uploads.limits.clips_per_voice} recordings.",
                "uploads",
            )
        return [self._uploads.get(upload_id) for upload_id in ids]

    async def _require_writable(self) -> None:
        reason = await asyncio.to_thread(self._core.profiles.not_writable_reason)
        if reason is not None:
            raise HttpProblem(HttpCode.NOT_WRITABLE, reason)

    async def _change(self, change: Any, *args: Any) -> None:
        """Run a profile writer's method off the loop, its failures as HTTP problems."""
        try:
            await asyncio.to_thread(change, *args)
        except ProfileNotFoundError as err:
            raise HttpProblem(HttpCode.NOT_FOUND, str(err)) from None
        except ProfileExistsError as err:
            raise HttpProblem(HttpCode.VOICE_EXISTS, str(err)) from None
        except DiskFullError as err:
            raise HttpProblem(HttpCode.DISK_FULL, str(err)) from None
        except ProfileError as err:
            raise bad_request(str(err)) from None

    async def _clips_from(self, body: dict[str, Any]) -> tuple[list[Upload], list[PreparedClip]]:
        """The uploads a request names and their cleaned clips (denoised if asked)."""
        uploads = self._uploads_named(body)
        denoise = body.get("denoise", False) is True
        return uploads, await asyncio.to_thread(_prepared, uploads, denoise)

    async def _used_up(self, uploads: list[Upload]) -> None:
        for upload in uploads:
            await self._uploads.remove(upload.id)

    async def _default_voice_name(self) -> str | None:
        try:
            return (await self._core.catalogue.resolve_voice(None)).name
        except SpeechError:
            return None

    async def _voice_views(self) -> list[dict[str, Any]]:
        profiles = await asyncio.to_thread(self._core.profiles.library.scan)
        default = await self._default_voice_name()
        views = [profile_view(profile, profile.name == default) for profile in profiles]
        taken = {profile.name for profile in profiles}
        views.extend(
            builtin_view(voice, voice.name == default)
            for voice in self._core.catalogue.builtin_voices()
            if voice.name not in taken
        )
        return views

    async def _voice_view(self, name: str) -> dict[str, Any]:
        for view in await self._voice_views():
            if view["name"] == name:
                return view
        raise HttpProblem(HttpCode.NOT_FOUND, f"There is no voice profile named {name[:80]!r}.")


async def _resolve(core: Core, name: str | None, style: str | None = None) -> Voice:
    try:
        return await core.catalogue.resolve_voice(name, style)
    except SpeechError as error:
        raise HttpProblem.from_speech(error, "voice") from None


def _prepared(uploads: list[Upload], denoise: bool) -> list[PreparedClip]:
    clips = []
    for upload in uploads:
        if upload.prepared is None:
            raise HttpProblem(ErrorCode.VOICE_UNUSABLE, upload.verdict, "uploads")
        if not denoise:
            clips.append(upload.prepared)
            continue
        try:
            clips.append(prepare_clip(upload.original, denoise=True))
        except ClipPreparationError as err:
            raise HttpProblem(ErrorCode.VOICE_UNUSABLE, str(err), "denoise") from None
    return clips


def _languages(value: Any) -> list[str]:
    tags = [value] if isinstance(value, str) else value
    if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
        raise bad_request("languages must list one or more language codes.", "languages")
    codes: list[str] = []
    for tag in tags:
        code = normalize_language(tag)
        if code is None:
            raise bad_request(
                f"XTTS-v2 cannot speak {tag[:20]!r}; it speaks {', '.join(XTTS_LANGUAGES)}.",
                "languages",
            )
        if code not in codes:
            codes.append(code)
    return codes


def _number(name: str, raw: str) -> float | int:
    try:
        return GENERATION_LIMITS[name].parse(name, raw)
    except OutOfRangeError as err:
        raise bad_request(str(err), name) from None


def _checked_generation(values: dict[str, Any]) -> dict[str, Any]:
    """Each given setting as its type; None (back to the default) stays None."""
    checked: dict[str, Any] = {}
    for name, value in values.items():
        try:
            checked[name] = None if value is None else GENERATION_LIMITS[name].check(name, value)
        except OutOfRangeError as err:
            raise bad_request(str(err), name) from None
    return checked


def _synthesis_changes(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise bad_request("synthesis must be an object of settings.", "synthesis")
    unknown = sorted(set(value) - set(GENERATION_LIMITS))
    if unknown:
        raise bad_request(
            f"Unknown setting(s) {', '.join(unknown)[:80]}; known: "
            f"{', '.join(sorted(GENERATION_LIMITS))}.",
            "synthesis",
        )
    return _checked_generation(value)
