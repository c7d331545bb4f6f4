"""Expressive speech through a real server: pauses from punctuation, SSML, speaking styles."""

from collections.abc import AsyncGenerator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from wyoming.client import AsyncTcpClient
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from wyoming_xtts.core.settings import Settings
from wyoming_xtts.core.voices import Voice
from wyoming_xtts.text.pauses import PAUSE_SECONDS, Ending

from .conftest import RecordingEngine, audio_bytes, event_types, read_until, serving
from .support.clips import write_clip, write_profile, zero_runs
from .support.fake_providers import FakePixazo, FakeReplicate
from .support.scripted_engine import RATE, ScriptedEngine
from .test_cloud import proxy, proxy_settings

SEGMENT_SECONDS = 0.3


@dataclass
class ToneEngine(ScriptedEngine):
    """0.3 s of a constant level per segment, never an exact zero: every run of zeros in a
    reply is a pause the server put there. Records what it was asked to speak."""

    languages: tuple[str, ...] = ("en", "de", "fr")
    texts: list[str] = field(default_factory=list)
    voices: list[str] = field(default_factory=list)
    spoken_in: list[str] = field(default_factory=list)
    speeds: list[float] = field(default_factory=list)

    async def synthesize(
        self, text: str, language: str, voice: Voice
    ) -> AsyncGenerator[np.ndarray, None]:
        self.texts.append(text)
        self.voices.append(voice.key)
        self.spoken_in.append(language)
        self.speeds.append(voice.generation.speed)
        yield np.full(int(SEGMENT_SECONDS * RATE), 0.1, np.float32)


@pytest.fixture
def tone() -> ToneEngine:
    return ToneEngine()


def settings_for(tmp_path: Path) -> Settings:
    voices = tmp_path / "voices"
    write_profile(voices, "alice", 'languages = ["en", "de"]\n')
    write_profile(voices, "bob", 'languages = ["en"]\n[synthesis]\nspeed = 2.0\n')
    grandma = write_profile(
        voices,
        "grandma",
        'languages = ["en"]\n[styles.cheerful]\ndescription = "Cheerful"\n'
        "[styles.cheerful.synthesis]\ntemperature = 0.9\n",
    )
    write_clip(grandma / "cheerful" / "party.wav", seed=5)
    write_clip(grandma / "calm" / "evening.wav", seed=6)
    return Settings(voices_dir=voices, data_dir=tmp_path / "data")


async def say(
    port: int, text: str, voice: str = "alice", ssml: bool = False, speaker: str | None = None
) -> list[Event]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(
            Synthesize(
                text=text,
                voice=SynthesizeVoice(name=voice, speaker=speaker),
                text_format="ssml" if ssml else None,
            ).event()
        )
        return await read_until(client, "audio-stop", "error")


async def stream(port: int, chunks: list[str], voice: str = "alice") -> list[Event]:
    async with AsyncTcpClient("127.0.0.1", port) as client:
        await client.write_event(
            SynthesizeStart(voice=SynthesizeVoice(name=voice), text_format="ssml").event()
        )
        for chunk in chunks:
            await client.write_event(SynthesizeChunk(text=chunk).event())
        await client.write_event(SynthesizeStop().event())
        return await read_until(client, "synthesize-stopped")


# -- pauses in plain text ---------------------------------------------------------------------

PLAIN = (
    "The first sentence is here.\n\nA new paragraph starts with this sentence. "
    "Is the third one a question? Well, the fourth one trails off...\nThe fifth is the last."
)


async def test_pauses_follow_the_punctuation_and_a_paragraph_pauses_longest(
    tone: ToneEngine, tmp_path: Path
) -> None:
    async with serving(settings_for(tmp_path), tone) as port:  # type: ignore[arg-type]
        events = await say(port, PLAIN)
    assert len(tone.texts) == 5, tone.texts
    assert zero_runs(audio_bytes(events)) == [
        PAUSE_SECONDS[Ending.PARAGRAPH],
        PAUSE_SECONDS[Ending.SENTENCE],
        PAUSE_SECONDS[Ending.SENTENCE],
        PAUSE_SECONDS[Ending.TRAILING_OFF],
    ]
    assert PAUSE_SECONDS[Ending.PARAGRAPH] > PAUSE_SECONDS[Ending.SENTENCE]
    assert PAUSE_SECONDS[Ending.SENTENCE] > PAUSE_SECONDS[Ending.CLAUSE]


async def test_a_voices_speed_applies_to_its_pauses(tone: ToneEngine, tmp_path: Path) -> None:
    async with serving(settings_for(tmp_path), tone) as port:  # type: ignore[arg-type]
        events = await say(port, PLAIN, voice="bob")  # speed = 2.0
    assert zero_runs(audio_bytes(events)) == [
        PAUSE_SECONDS[Ending.PARAGRAPH] / 2,
        PAUSE_SECONDS[Ending.SENTENCE] / 2,
        PAUSE_SECONDS[Ending.SENTENCE] / 2,
        PAUSE_SECONDS[Ending.TRAILING_OFF] / 2,
    ]


# -- SSML ---------------------------------------------------------------------------------------

BREAKS = (
    '<speak xml:lang="en">The first sentence is here.<break time="700ms"/>'
    "The second sentence is here.<break strength=\"strong\"/><break time='300ms'/>"
    "<p>The third sentence is a paragraph.</p><p>And so is the fourth one here.</p></speak>"
)


async def test_breaks_are_exact_silences_and_paragraphs_pause_at_the_voices_pace(
    tone: ToneEngine, tmp_path: Path
) -> None:
    async with serving(settings_for(tmp_path), tone) as port:  # type: ignore[arg-type]
        alice = await say(port, BREAKS, ssml=True)
        bob = await say(port, BREAKS, voice="bob", ssml=True)  # speed 2.0
    paragraph = PAUSE_SECONDS[Ending.PARAGRAPH]
    assert zero_runs(audio_bytes(alice)) == [0.7, 1.0, paragraph]
    assert zero_runs(audio_bytes(bob)) == [0.7, 1.0, paragraph / 2]
    assert event_types(alice) == ["audio-start", "audio-chunk", "audio-stop"]


async def test_a_break_before_the_first_words_and_after_the_last_is_kept(
    tone: ToneEngine, tmp_path: Path
) -> None:
    text = '<speak><break time="500ms"/>Hello there, everyone in the house.<break time="200ms"/></speak>'
    async with serving(settings_for(tmp_path), tone) as port:  # type: ignore[arg-type]
        pcm = audio_bytes(await say(port, text, ssml=True))
    samples = np.frombuffer(pcm, dtype="<i2")
    assert zero_runs(pcm) == [0.5, 0.2]
    assert samples[: int(0.5 * RATE)].max() == 0 and samples[-int(0.2 * RATE) :].max() == 0


SWITCHES = (
    '<speak>Alice says this first sentence. <voice name="bob">Bob says this other sentence.'
    '</voice> <voice name="grandma" style="cheerful">Grandma sounds cheerful here.</voice> '
    '<lang xml:lang="de">Und jetzt spricht Alice Deutsch.</lang> '
    '<prosody rate="slow">Alice says this one slowly.</prosody></speak>'
)


async def test_voice_language_and_pace_switch_within_one_response_with_one_audio_start(
    tone: ToneEngine, tmp_path: Path
) -> None:
    async with serving(settings_for(tmp_path), tone) as port:  # type: ignore[arg-type]
        events = await say(port, SWITCHES, ssml=True)
    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    assert tone.voices == ["alice", "bob", "grandma/cheerful", "alice", "alice"]
    assert tone.spoken_in == ["en", "en", "en", "de", "en"]
    assert tone.speeds == [1.0, 2.0, 1.0, 1.0, 0.8]


async def test_tags_split_anywhere_across_chunks_give_the_same_speech(
    tone: ToneEngine, tmp_path: Path
) -> None:
    document = (
        '<speak><p>Good <emphasis level="strong">morning</emphasis>, the time is '
        '<say-as interpret-as="time">07:30</say-as>.</p><break time="400ms"/>'
        '<voice name="bob">Bob &amp; <sub alias="Home Assistant">HA</sub> say hello.</voice></speak>'
    )
    async with serving(settings_for(tmp_path), tone) as port:  # type: ignore[arg-type]
        whole = audio_bytes(await stream(port, [document]))
        expected = list(tone.texts)
        for cut in range(1, len(document)):
            tone.texts.clear()
            pcm = audio_bytes(await stream(port, [document[:cut], document[cut:]]))
            assert tone.texts == expected, f"cut at {cut}: {document[:cut][-20:]!r}"
            assert pcm == whole, f"cut at {cut}"
    assert expected == ["Good morning, the time is 7 30.", "Bob & Home Assistant say hello."]


async def test_say_as_and_sub_are_read_through_the_spoken_forms(
    tone: ToneEngine, tmp_path: Path
) -> None:
    document = (
        '<speak>Spell <say-as interpret-as="characters">ABC</say-as>, call '
        '<say-as interpret-as="telephone">+49 30 1234</say-as>, on '
        '<say-as interpret-as="date" format="dmy">01.12.2026</say-as>, the '
        '<say-as interpret-as="ordinal">3</say-as> time, '
        '<say-as interpret-as="cardinal">1,234</say-as> lamps.</speak>'
    )
    async with serving(settings_for(tmp_path), tone) as port:  # type: ignore[arg-type]
        await say(port, document, ssml=True)
    expected = (
        "Spell A B C, call plus 4 9, 3 0, 1 2 3 4, on December 1st, twenty twenty-six, "
        "the third time, 1234 lamps."
    )
    assert tone.texts == [expected]


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ("<speak>Hello <b>there</speak>", "mismatched tag at line 1, column 24"),
        ("<speak>Unclosed", "no element found"),
        ('<!DOCTYPE speak [<!ENTITY x "boom">]><speak>&x;</speak>', "document type"),
        ("<p>No speak root.</p>", "root element must be <speak>"),
        ("<speak>" + "<s>" * 40 + "Deep." + "</s>" * 40 + "</speak>", "nested deeper than 32"),
        ('<speak>Wait <break time="soon"/> now.</speak>', "700ms or 1.5s"),
    ],
)
async def test_malformed_ssml_is_a_bad_request_with_its_position_and_the_response_ends(
    tone: ToneEngine, tmp_path: Path, document: str, words: str
) -> None:
    async with serving(settings_for(tmp_path), tone) as port:  # type: ignore[arg-type]
        plain = await say(port, document, ssml=True)
        streamed = await stream(port, [document[:9], document[9:]])
        after = await say(port, "<speak>Still speaking after that.</speak>", ssml=True)
    assert plain[-1].type == "error" and plain[-1].data["code"] == "bad-request"
    assert words in plain[-1].data["text"]
    assert event_types(streamed)[-2:] == ["error", "synthesize-stopped"]
    assert event_types(after) == ["audio-start", "audio-chunk", "audio-stop"]
    assert tone.texts == ["Still speaking after that."]


async def test_without_text_format_markup_is_text_as_before(
    tone: ToneEngine, tmp_path: Path
) -> None:
    async with serving(settings_for(tmp_path), tone) as port:  # type: ignore[arg-type]
        await say(port, '<speak>Hello <break time="2s"/>there, **friend**.</speak>')
    assert tone.texts == ["Hello there, friend."]


async def test_an_unknown_text_format_is_a_bad_request(tone: ToneEngine, tmp_path: Path) -> None:
    async with (
        serving(settings_for(tmp_path), tone) as port,  # type: ignore[arg-type]
        AsyncTcpClient("127.0.0.1", port) as client,
    ):
        await client.write_event(Synthesize(text="Hi there.", text_format="markdown").event())
        events = await read_until(client, "error")
    assert events[-1].data["code"] == "bad-request"
    assert "text_format" in events[-1].data["text"]


# -- speaking styles ----------------------------------------------------------------------------


async def test_styles_are_listed_as_speakers_and_a_request_picks_one(
    tone: ToneEngine, tmp_path: Path
) -> None:
    async with serving(settings_for(tmp_path), tone) as port:  # type: ignore[arg-type]
        async with AsyncTcpClient("127.0.0.1", port) as client:
            await client.write_event(Describe().event())
            info = Info.from_event((await read_until(client, "info"))[-1])
        cheerful = await say(port, "A cheerful hello to you all.", "grandma", speaker="cheerful")
        plain = await say(port, "A plain hello to you all.", "grandma")
        unknown = await say(port, "Hello.", "grandma", speaker="angry")
        builtin = await say(port, "Hello.", "alice", speaker="cheerful")
    voices = {voice.name: voice for voice in info.tts[0].voices}
    assert [s.name for s in voices["grandma"].speakers or []] == ["calm", "cheerful"]
    assert voices["alice"].speakers is None
    assert event_types(cheerful) == ["audio-start", "audio-chunk", "audio-stop"]
    assert event_types(plain) == ["audio-start", "audio-chunk", "audio-stop"]
    assert tone.voices == ["grandma/cheerful", "grandma"]
    assert unknown[-1].data["code"] == "speaker-not-found"
    assert "its styles: calm, cheerful" in unknown[-1].data["text"]
    assert builtin[-1].data["code"] == "speaker-not-found"


@pytest.mark.slow
async def test_a_style_speaks_with_its_own_clips_through_the_local_engine(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    settings = settings_for(tmp_path)
    toml = settings.voices_dir / "grandma" / "voice.toml"
    toml.write_text(toml.read_text().replace("[styles.", "[synthesis]\nseed = 11\n\n[styles.", 1))
    sentence = "Hello to you all in the house."
    async with serving(settings, engine) as port:
        engine.voices.clear()
        calm = audio_bytes(await say(port, sentence, "grandma", speaker="calm"))
        plain = audio_bytes(await say(port, sentence, "grandma"))
        calm_again = audio_bytes(await say(port, sentence, "grandma", speaker="calm"))
    # The repeat came from the audio cache, whose key tells the styles apart.
    assert engine.voices == ["grandma/calm", "grandma"]
    # Same seed, same text: only the clips (the conditioning) differ between the two.
    assert calm == calm_again and calm != plain


@pytest.mark.slow
async def test_prosody_rate_changes_the_length_of_the_models_audio_in_the_right_direction(
    engine: RecordingEngine, tmp_path: Path
) -> None:
    sentence = "The washing machine is done and the towels can go on the rack."
    async with serving(settings_for(tmp_path), engine) as port:
        slow = audio_bytes(
            await say(
                port, f'<speak><prosody rate="x-slow">{sentence}</prosody></speak>', ssml=True
            )
        )
        normal = audio_bytes(await say(port, f"<speak>{sentence}</speak>", ssml=True))
        fast = audio_bytes(
            await say(
                port, f'<speak><prosody rate="x-fast">{sentence}</prosody></speak>', ssml=True
            )
        )
    assert len(slow) > len(normal) > len(fast)


async def test_a_style_reaches_a_cloud_provider_as_a_reference_of_its_own(
    replicate: FakeReplicate, tmp_path: Path
) -> None:
    settings = proxy_settings("replicate", replicate, tmp_path)
    async with proxy(settings) as server:
        write_clip(server.voices_dir / "alice" / "cheerful" / "party.wav", seed=9)
        plain = await say(server.port, "Hello there, my friend.")
        cheerful = await say(server.port, "Hello again, my friend.", speaker="cheerful")
        mixed = await say(
            server.port,
            '<speak>Plain words come first. <voice style="cheerful">Then cheerful '
            "ones.</voice></speak>",
            ssml=True,
        )
    assert all(audio_bytes(events) for events in (plain, cheerful, mixed))
    # A reply's segments are predicted side by side, so the order of creation is not fixed.
    speaker_of = {
        call.json()["input"]["text"]: call.json()["input"]["speaker"]
        for call in replicate.calls("POST", "/v1/predictions")
    }
    plain_reference = speaker_of["Hello there, my friend."]
    assert speaker_of["Plain words come first."] == plain_reference
    assert speaker_of["Then cheerful ones."] == speaker_of["Hello again, my friend."]
    assert speaker_of["Then cheerful ones."] != plain_reference
    assert len(speaker_of) == 4


async def test_pixazo_gets_a_styles_own_speaker_url_and_ssml_as_one_request_per_segment(
    pixazo: FakePixazo, tmp_path: Path
) -> None:
    settings = proxy_settings("pixazo", pixazo, tmp_path)
    async with proxy(settings) as server:
        toml = server.voices_dir / "alice" / "voice.toml"
        toml.write_text(
            toml.read_text()
            + '\n[styles.calm]\nspeaker_url = "https://voices.example.org/alice-calm.wav"\n'
        )
        write_clip(server.voices_dir / "alice" / "calm" / "evening.wav", seed=9)
        events = await say(
            server.port,
            '<speak>Good evening to you.<break time="300ms"/><voice style="calm">'
            '<lang xml:lang="de">Gute Nacht, schlaf gut.</lang></voice></speak>',
            ssml=True,
        )
    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    # A reply's segments are generated side by side: their requests arrive in either order.
    generated = [call.json() for call in pixazo.calls("POST", "/voice-clone/v1/xtts-v2/generate")]
    assert {g["text"]: (g["speaker"].rsplit("/", 1)[-1], g["language"]) for g in generated} == {
        "Good evening to you.": ("alice.wav", "en"),
        "Gute Nacht, schlaf gut.": ("alice-calm.wav", "de"),
    }
    assert 0.3 in zero_runs(audio_bytes(events))


async def test_an_element_not_interpreted_is_spoken_as_its_text_and_logged_once(
    tone: ToneEngine, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    document = (
        '<speak><emphasis level="strong">One</emphasis> and <emphasis>two</emphasis> words, '
        '<phoneme alphabet="ipa" ph="təmɑːtəʊ">tomato</phoneme> here.</speak>'
    )
    caplog.set_level("INFO", logger="wyoming_xtts.text.ssml")
    async with serving(settings_for(tmp_path), tone) as port:  # type: ignore[arg-type]
        await say(port, document, ssml=True)
    assert tone.texts == ["One and two words, tomato here."]
    logged = [record.getMessage() for record in caplog.records]
    assert sum("<emphasis>" in message for message in logged) == 1
    assert sum("<phoneme>" in message for message in logged) == 1
