"""A tiny Wyoming text-to-speech server, run as its own process: what Piper is to a fallback.

    python -m tests.support.tone_server --port 10300 --rate 22050 --log requests.log

It answers `describe` with one program of two voices and `synthesize` with a tone: `tone`
(the default) at 440 Hz, `low` at 220 Hz, `TONE_SECONDS` long, in 16-bit mono at `--rate`,
in chunks of 1024 samples. The voice `hang` is accepted and never answered (a server that
stopped responding); any other name gets an `error` event, as a real server answers a voice
it does not have. Each request is appended to `--log` as `voice=NAME text=TEXT` (`voice=-`
when none was named), so a test can tell which voice it was asked for.
"""

import argparse
import asyncio
from functools import partial
from pathlib import Path

import numpy as np
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import Attribution, Describe, Info, TtsProgram, TtsVoice
from wyoming.server import AsyncEventHandler, AsyncTcpServer
from wyoming.tts import Synthesize

TONE_SECONDS = 0.5
PITCHES = {"tone": 440.0, "low": 220.0}
"""Its voices and the pitch each speaks at."""
DEFAULT_VOICE = "tone"
HANG_VOICE = "hang"
CHUNK_SAMPLES = 1024
_ATTRIBUTION = Attribution(name="tests", url="https://example.org")


def tone(pitch: float, rate: int, seconds: float = TONE_SECONDS) -> bytes:
    """16-bit mono PCM of a sine at `pitch`, faded in and out."""
    t = np.arange(int(seconds * rate)) / rate
    fade = np.minimum(1.0, np.minimum(t, seconds - t) / 0.02)
    samples = 0.5 * np.sin(2 * np.pi * pitch * t) * fade
    return bytes((samples * 32767).astype("<i2").tobytes())


class ToneHandler(AsyncEventHandler):
    """One connection."""

    def __init__(
        self,
        rate: int,
        log: Path | None,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        super().__init__(reader, writer)
        self._rate = rate
        self._log = log

    async def handle_event(self, event: Event) -> bool:
        if Describe.is_type(event.type):
            await self.write_event(_info().event())
            return True
        if not Synthesize.is_type(event.type):
            return True
        request = Synthesize.from_event(event)
        name = request.voice.name if request.voice and request.voice.name else None
        if self._log is not None:
            with self._log.open("a", encoding="utf-8") as log:
                log.write(f"voice={name or '-'} text={request.text}\n")
        if name == HANG_VOICE:
            await asyncio.sleep(3600)
        pitch = PITCHES.get(name or DEFAULT_VOICE)
        if pitch is None:
            await self.write_event(
                Error(text=f"No voice named {name}", code="voice-not-found").event()
            )
            return True
        await self._speak(pitch)
        return True

    async def _speak(self, pitch: float) -> None:
        pcm = tone(pitch, self._rate)
        await self.write_event(AudioStart(rate=self._rate, width=2, channels=1).event())
        step = CHUNK_SAMPLES * 2
        for start in range(0, len(pcm), step):
            chunk = AudioChunk(
                rate=self._rate, width=2, channels=1, audio=pcm[start : start + step]
            )
            await self.write_event(chunk.event())
        await self.write_event(AudioStop().event())


def _info() -> Info:
    voices = [
        TtsVoice(
            name=name,
            description=f"A {pitch:g} Hz tone",
            attribution=_ATTRIBUTION,
            installed=True,
            version="1",
            languages=["en"],
        )
        for name, pitch in PITCHES.items()
    ]
    program = TtsProgram(
        name="tone-server",
        description="Tones for tests",
        attribution=_ATTRIBUTION,
        installed=True,
        version="1",
        voices=voices,
    )
    return Info(tts=[program])


async def _serve(port: int, rate: int, log: Path | None) -> None:
    server = AsyncTcpServer("127.0.0.1", port)
    await server.run(partial(ToneHandler, rate, log))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--rate", type=int, default=22_050)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args()
    asyncio.run(_serve(args.port, args.rate, args.log))


if __name__ == "__main__":
    main()
