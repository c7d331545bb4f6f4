"""The `info` event answering `describe`: one TTS program listing every voice."""

from collections.abc import Sequence

from wyoming.info import Attribution, Info, TtsProgram, TtsVoice, TtsVoiceSpeaker

from ... import __version__
from ...core.catalogue import VoiceListing
from ...core.engine import EngineInfo

_PROGRAM_NAME = "wyoming-xtts"
_PROJECT_URL = "https://github.com/wyoming-xtts/wyoming-xtts"
_PROFILE_ATTRIBUTION = Attribution(name="Voice profile", url=_PROJECT_URL)


def build_info(engine: EngineInfo, voices: Sequence[VoiceListing]) -> Info:
    """Info with one streaming-capable `TtsProgram`; every field Home Assistant needs is set."""
    model_attribution = Attribution(name=engine.attribution_name, url=engine.attribution_url)
    return Info(
        tts=[
            TtsProgram(
                name=_PROGRAM_NAME,
                description=f"wyoming-xtts: {engine.description}",
                attribution=Attribution(name="wyoming-xtts", url=_PROJECT_URL),
                installed=True,
                version=__version__,
                supports_synthesize_streaming=True,
                voices=[
                    TtsVoice(
                        name=voice.name,
                        description=voice.description,
                        attribution=model_attribution if voice.builtin else _PROFILE_ATTRIBUTION,
                        installed=True,
                        version=engine.version if voice.builtin else None,
                        languages=list(voice.languages),
                        speakers=[TtsVoiceSpeaker(name=style) for style in voice.styles] or None,
                    )
                    for voice in voices
                ],
            )
        ]
    )
