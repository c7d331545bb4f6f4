"""How the voice studio's API shows voices, styles, clips and recordings to the page, as JSON.

One shape per thing, so that a profile looks the same in the list, after a change and after
an upload (the page's modules read these fields; its browser tests hold them).
"""

from dataclasses import asdict
from typing import Any

from ...core.audio import ClipReport
from ...core.catalogue import builtin_description
from ...core.generation import GENERATION_LIMITS, GenerationSettings
from ...core.voices import Voice, VoiceProfile
from .uploads import Upload


def generation_ranges() -> dict[str, dict[str, Any]]:
    """Each generation setting's range and default, for the page's sliders."""
    defaults = GenerationSettings()
    return {
        name: {
            "min": limits.low,
            "max": limits.high,
            "default": getattr(defaults, name),
            "step": 1 if limits.kind is int else 0.01,
            "integer": limits.kind is int,
        }
        for name, limits in GENERATION_LIMITS.items()
    }


def clip_view(report: ClipReport) -> dict[str, Any]:
    return {
        "name": report.path.name,
        "duration_s": round(report.duration_s, 2),
        "speech_s": round(report.speech_s, 2),
        "sample_rate": report.sample_rate,
        "channels": report.channels,
        "errors": list(report.errors),
        "warnings": list(report.warnings),
    }


def profile_view(profile: VoiceProfile, is_default: bool) -> dict[str, Any]:
    voice = profile.voice
    return {
        "name": voice.name,
        "description": profile.description,
        "languages": list(voice.languages),
        "builtin": False,
        "usable": profile.usable,
        "default": is_default,
        "errors": list(profile.errors),
        "warnings": list(profile.warnings),
        "clips": [clip_view(report) for report in profile.clip_reports],
        "synthesis": asdict(voice.generation),
        "styles": [
            {
                "name": style.name,
                "description": style.description,
                "usable": style.usable,
                "errors": list(style.errors),
                "warnings": list(style.warnings),
                "clips": [clip_view(report) for report in style.clip_reports],
                "synthesis": asdict(style.voice.generation),
            }
            for style in profile.styles
        ],
    }


def builtin_view(voice: Voice, is_default: bool) -> dict[str, Any]:
    return {
        "name": voice.name,
        "description": builtin_description(voice),
        "languages": list(voice.languages),
        "builtin": True,
        "usable": True,
        "default": is_default,
        "errors": [],
        "warnings": [],
        "clips": [],
        "synthesis": asdict(voice.generation),
        "styles": [],
    }


def upload_view(upload: Upload) -> dict[str, Any]:
    report = upload.report
    return {
        "id": upload.id,
        "name": upload.name,
        "ok": upload.ok,
        "verdict": upload.verdict,
        "duration_s": round(report.duration_s, 2),
        "speech_s": round(report.speech_s, 2),
        "prepared_s": round(upload.prepared.duration_s, 2) if upload.prepared else 0.0,
        "sample_rate": report.sample_rate,
        "channels": report.channels,
        "errors": [*report.errors, *([upload.problem] if upload.problem else [])],
        "warnings": list(report.warnings),
    }
