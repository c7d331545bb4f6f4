"""The Wyoming conversation, through a real TCP server and the `wyoming` package's client."""

import asyncio

import pytest
from wyoming.audio import AudioChunk, AudioStart
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Describe, Info
from wyoming.ping import Ping
from wyoming.tts import (
    Synthesize,
    SynthesizeChunk,
    SynthesizeStart,
    SynthesizeStop,
    SynthesizeVoice,
)

from .conftest import BUILTIN_SPEAKERS, LiveServer, audio_bytes, event_types, read_until
from .support.clips import write_profile, write_silence

ALICE = SynthesizeVoice(name="alice")
TWO_SENTENCES = "The washing machine has finished its cycle. Please empty it before the evening."


async def describe(server: LiveServer) -> Info:
    async with server.client() as client:
        await client.write_event(Describe().event())
        events = await read_until(client, "info")
    return Info.from_event(events[-1])


async def speak_plain(
    server: LiveServer, text: str, voice: SynthesizeVoice | None = ALICE
) -> list[Event]:
    async with server.client() as client:
        await client.write_event(Synthesize(text=text, voice=voice).event())
        return await read_until(client, "audio-stop", "error")


async def test_describe_lists_profiles_and_builtin_speakers_with_fields_home_assistant_needs(
    live_server: LiveServer,
) -> None:
    info = await describe(live_server)

    assert len(info.tts) == 1
    program = info.tts[0]
    assert program.supports_synthesize_streaming is True
    assert program.installed and program.attribution.name and program.version
    by_name = {voice.name: voice for voice in program.voices}
    assert next(iter(by_name)) == "alice"
    assert by_name["alice"].description == "Alice"
    assert by_name["alice"].languages == ["en"]
    for name in BUILTIN_SPEAKERS:
        assert "zh-CN" in by_name[name].languages
        assert by_name[name].languages[0] == "en"
    for voice in program.voices:
        assert voice.installed is True
        assert voice.attribution.name and voice.attribution.url
        assert voice.languages


async def test_profile_added_while_running_is_listed_without_restart(
    live_server: LiveServer,
) -> None:
    assert "bob" not in {voice.name for voice in (await describe(live_server)).tts[0].voices}

    write_profile(live_server.voices_dir, "bob", 'description = "Bob"\nlanguage = "de"\n')

    voices = {voice.name: voice for voice in (await describe(live_server)).tts[0].voices}
    assert voices["bob"].languages == ["de"]


async def test_broken_profile_is_skipped_with_a_warning_naming_file_and_reason(
    live_server: LiveServer, caplog
) -> None:
    write_silence(live_server.voices_dir / "mute" / "quiet.wav")

    voices = {voice.name for voice in (await describe(live_server)).tts[0].voices}

    assert "mute" not in voices and "alice" in voices
    assert any(
        "quiet.wav" in record.message and "silent" in record.message for record in caplog.records
    )


async def test_plain_synthesize_answers_one_audio_start_chunks_and_one_audio_stop(
    live_server: LiveServer,
) -> None:
    events = await speak_plain(live_server, TWO_SENTENCES)

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    start = AudioStart.from_event(events[0])
    assert (start.rate, start.width, start.channels) == (24000, 2, 1)
    chunks = [AudioChunk.from_event(event) for event in events if event.type == "audio-chunk"]
    assert all((c.rate, c.width, c.channels) == (24000, 2, 1) for c in chunks)
    assert all(len(c.audio) == 2048 for c in chunks[:-1]) and 0 < len(chunks[-1].audio) <= 2048
    assert live_server.engine.finished == [
        "The washing machine has finished its cycle.",
        "Please empty it before the evening.",
    ]


@pytest.mark.slow
async def test_home_assistant_stream_speaks_once_and_ends_with_synthesize_stopped(
    live_server: LiveServer,
) -> None:
    plain_audio = audio_bytes(await speak_plain(live_server, TWO_SENTENCES))
    live_server.engine.finished.clear()

    async with live_server.client() as client:
        await client.write_event(SynthesizeStart(voice=ALICE).event())
        for piece in (
            "The wash",
            "ing machine has fin",
            "ished its cycle. Plea",
            "se empty it before the evening.",
        ):
            await client.write_event(SynthesizeChunk(text=piece).event())
        # Home Assistant's compatibility copy of the whole text, which must not be spoken.
        await client.write_event(Synthesize(text=TWO_SENTENCES, voice=ALICE).event())
        await client.write_event(SynthesizeStop().event())
        events = await read_until(client, "synthesize-stopped")
        # Responses on a connection are answered in order: had the compatibility copy been
        # queued as a request, its audio would come before this one's.
        await client.write_event(Synthesize(text="Next request.", voice=ALICE).event())
        following = await read_until(client, "audio-stop")

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]
    assert event_types(following) == ["audio-start", "audio-chunk", "audio-stop"]
    assert live_server.engine.finished == [
        "The washing machine has finished its cycle.",
        "Please empty it before the evening.",
        "Next request.",
    ]
    # The test checkpoint never samples its stop token: each segment runs to its budget.
    assert len(audio_bytes(events)) == len(plain_audio)


async def test_stream_without_voice_uses_the_default_voice(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        await client.write_event(Event(type="synthesize-start", data={}))
        await client.write_event(SynthesizeChunk(text="Good morning, the coffee is ready.").event())
        await client.write_event(SynthesizeStop().event())
        events = await read_until(client, "synthesize-stopped")

    assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop", "synthesize-stopped"]


async def test_first_sentence_is_spoken_before_the_stream_ends(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        await client.write_event(SynthesizeStart(voice=ALICE).event())
        await client.write_event(
            SynthesizeChunk(text="The first sentence is complete now. And the sec").event()
        )

        first = await read_until(client, "audio-start")

        await client.write_event(SynthesizeChunk(text="ond one arrives later.").event())
        await client.write_event(SynthesizeStop().event())
        rest = await read_until(client, "synthesize-stopped")

    assert [event.type for event in first] == ["audio-start"]
    assert event_types(rest)[-2:] == ["audio-stop", "synthesize-stopped"]
    assert live_server.engine.finished == [
        "The first sentence is complete now.",
        "And the second one arrives later.",
    ]


async def test_ping_is_answered_and_unknown_events_are_ignored(live_server: LiveServer) -> None:
    async with live_server.client() as client:
        await client.write_event(Event(type="something-new", data={"x": 1}))
        await client.write_event(Ping(text="hi").event())
        pong = await read_until(client, "pong")
        await client.write_event(Describe().event())
        info = await read_until(client, "info")

    assert [event.type for event in pong] == ["pong"] and pong[0].data.get("text") == "hi"
    assert [event.type for event in info] == ["info"]


async def test_two_clients_are_served_at_once_each_with_whole_responses(
    live_server: LiveServer,
) -> None:
    results = await asyncio.gather(
        speak_plain(live_server, "The first client asks for this sentence."),
        speak_plain(
            live_server,
            "The second client asks for another sentence.",
            SynthesizeVoice(name=BUILTIN_SPEAKERS[0]),
        ),
    )

    for events in results:
        assert event_types(events) == ["audio-start", "audio-chunk", "audio-stop"]
    assert len(audio_bytes(results[0])) == len(audio_bytes(results[1])) > 0


@pytest.mark.slow
async def test_a_short_request_waits_for_at_most_one_segment_of_a_long_one(
    live_server: LiveServer,
) -> None:
    long_text = " ".join(f"This is sentence number {n} of a long announcement." for n in range(6))
    async with live_server.client() as long_client, live_server.client() as short_client:
        await long_client.write_event(Synthesize(text=long_text, voice=ALICE).event())
        await read_until(long_client, "audio-start")
        await short_client.write_event(
            Synthesize(text="A short reply in between.", voice=ALICE).event()
        )
        await read_until(short_client, "audio-stop")
        long_segments_before_short_finished = len(live_server.engine.finished) - 1
        await read_until(long_client, "audio-stop")

    assert long_segments_before_short_finished <= 2
    assert live_server.engine.finished.index("A short reply in between.") <= 2


@pytest.mark.slow
async def test_describe_is_answered_while_another_client_is_synthesizing(
    live_server: LiveServer,
) -> None:
    long_text = " ".join(f"This is sentence number {n} of a long announcement." for n in range(6))
    async with live_server.client() as speaker:
        await speaker.write_event(Synthesize(text=long_text, voice=ALICE).event())
        await read_until(speaker, "audio-start")

        await describe(live_server)
        segments_done_at_describe = len(live_server.engine.finished)

        rest = await read_until(speaker, "audio-stop")

    assert segments_done_at_describe < 6
    assert rest[-1].type == "audio-stop" and len(live_server.engine.finished) == 6


async def test_client_that_disconnects_stops_its_synthesis_and_the_server_keeps_serving(
    live_server: LiveServer,
) -> None:
    long_text = " ".join(f"This is sentence number {n} of a long announcement." for n in range(8))
    async with live_server.client() as client:
        await client.write_event(Synthesize(text=long_text, voice=ALICE).event())
        await read_until(client, "audio-start")

    for _ in range(100):
        if live_server.engine.closed_early:
            break
        await asyncio.sleep(0.05)

    assert len(live_server.engine.closed_early) == 1
    assert len(live_server.engine.started) < 8
    events = await speak_plain(live_server, "Still here after that.")
    assert events[-1].type == "audio-stop"


# -- errors: a clear `error` with a stable code, the response closed, the connection usable --


async def assert_connection_still_works(client) -> None:
    await client.write_event(Describe().event())
    assert (await read_until(client, "info"))[-1].type == "info"


async def plain_error(server: LiveServer, synthesize: Event) -> tuple[list[Event], Error]:
    """A plain request that fails: its error, then the connection closes (Home Assistant's
    plain reader waits for that, not for the error) and the server takes the next client."""
    async with server.client() as client:
        await client.write_event(synthesize)
        events = await read_until(client, "error")
        assert await asyncio.wait_for(client.read_event(), 1.0) is None
    async with server.client() as client:
        await assert_connection_still_works(client)
    return events, Error.from_event(events[-1])


async def test_unknown_voice_gets_voice_not_found_listing_available_voices(
    live_server: LiveServer,
) -> None:
    events, error = await plain_error(
        live_server, Synthesize(text="Hello there.", voice=SynthesizeVoice(name="nobody")).event()
    )

    assert [event.type for event in events] == ["error"]
    assert error.code == "voice-not-found"
    assert "nobody" in error.text and "alice" in error.text


async def test_voice_name_with_path_separators_is_not_found(live_server: LiveServer) -> None:
    _, error = await plain_error(
        live_server, Synthesize(text="Hello there.", voice=SynthesizeVoice(name="../alice")).event()
    )

    assert error.code == "voice-not-found"


async def test_empty_text_gets_empty_text_error(live_server: LiveServer) -> None:
    for text in ("", "   ", "***"):
        events, error = await plain_error(live_server, Synthesize(text=text, voice=ALICE).event())
        assert [event.type for event in events] == ["error"] and error.code == "empty-text"


async def test_text_over_the_limit_gets_text_too_long_error(live_server: LiveServer) -> None:
    events, error = await plain_error(
        live_server, Synthesize(text="word " * 401, voice=ALICE).event()
    )

    assert [event.type for event in events] == ["error"]
    assert error.code == "text-too-long" and "2000" in error.text
    assert live_server.engine.started == []


async def test_voice_with_unusable_clips_gets_voice_unusable_naming_the_clip(
    live_server: LiveServer,
) -> None:
    write_silence(live_server.voices_dir / "mute" / "quiet.wav")

    _, error = await plain_error(
        live_server, Synthesize(text="Hello there.", voice=SynthesizeVoice(name="mute")).event()
    )

    assert error.code == "voice-unusable" and "quiet.wav" in error.text


async def test_malformed_synthesize_gets_bad_request(live_server: LiveServer) -> None:
    for data in (
        {"text": 42},
        {"text": "Hi there.", "voice": "alice"},
        {"text": "Hi.", "voice": {"name": 7}},
    ):
        events, error = await plain_error(live_server, Event(type="synthesize", data=data))
        assert [event.type for event in events] == ["error"] and error.code == "bad-request"


async def test_stream_with_unknown_voice_reports_error_then_synthesize_stopped(
    live_server: LiveServer,
) -> None:
    async with live_server.client() as client:
        await client.write_event(SynthesizeStart(voice=SynthesizeVoice(name="nobody")).event())
        await client.write_event(SynthesizeChunk(text="Hello there, how are you?").event())
        await client.write_event(SynthesizeStop().event())
        events = await read_until(client, "synthesize-stopped")
        await assert_connection_still_works(client)

    assert [event.type for event in events] == ["error", "synthesize-stopped"]
    assert events[0].data["code"] == "voice-not-found"


async def test_stream_over_the_limit_reports_text_too_long_and_still_stops(
    live_server: LiveServer,
) -> None:
    async with live_server.client() as client:
        await client.write_event(SynthesizeStart(voice=ALICE).event())
        await client.write_event(SynthesizeChunk(text="This first sentence fits easily. ").event())
        await client.write_event(
            SynthesizeChunk(text="And then " + "far too much text " * 120).event()
        )
        await client.write_event(SynthesizeChunk(text="More text that must be dropped.").event())
        await client.write_event(SynthesizeStop().event())
        events = await read_until(client, "synthesize-stopped")
        await assert_connection_still_works(client)

    # The first sentence is not complete until the next one starts, and the next piece is
    # already over the limit: nothing is spoken, the error is reported, the stream is closed.
    assert [event.type for event in events] == ["error", "synthesize-stopped"]
    assert Error.from_event(events[0]).code == "text-too-long"
    assert live_server.engine.started == []


async def test_stream_events_out_of_order_get_bad_request_and_the_connection_survives(
    live_server: LiveServer,
) -> None:
    async with live_server.client() as client:
        await client.write_event(SynthesizeChunk(text="orphan").event())
        first = await read_until(client, "error")
        await client.write_event(SynthesizeStop().event())
        second = await read_until(client, "error")
        await client.write_event(
            Synthesize(text="After the confusion, a real request.", voice=ALICE).event()
        )
        spoken = await read_until(client, "audio-stop")

    assert first[0].data["code"] == second[0].data["code"] == "bad-request"
    assert event_types(spoken) == ["audio-start", "audio-chunk", "audio-stop"]


async def test_error_after_audio_started_still_closes_the_audio_and_the_stream(
    live_server: LiveServer,
) -> None:
    async with live_server.client() as client:
        await client.write_event(SynthesizeStart(voice=ALICE).event())
        await client.write_event(
            SynthesizeChunk(text="The first sentence is spoken in full. The sec").event()
        )
        first = await read_until(client, "audio-start")
        await client.write_event(
            SynthesizeChunk(text="ond " + "overflows the limit " * 120).event()
        )
        await client.write_event(SynthesizeStop().event())
        rest = await read_until(client, "synthesize-stopped")
        await assert_connection_still_works(client)

    assert [event.type for event in first] == ["audio-start"]
    assert event_types(rest) == ["audio-chunk", "error", "audio-stop", "synthesize-stopped"]
    assert rest[-3].data["code"] == "text-too-long"
    assert live_server.engine.finished == ["The first sentence is spoken in full."]
