"""Speaking into an HTTP response: the same speaking service as the Wyoming door, streamed.

The response starts with the first audio: until then every failure (unknown voice, empty
text, a provider refusing) is still an ordinary JSON error with its status. Once audio has
been sent the status cannot change any more, so a later failure breaks the connection off
before the end of the chunked body: every HTTP client reports that as an incomplete reply,
never as a shorter file that looks whole.
"""

import asyncio
import logging
from contextlib import aclosing

from aiohttp import web

from ...core.errors import ErrorCode, SpeechError
from ...core.service import Core
from ...core.speaking import whole_text
from ...core.voices import Voice
from .encoding import ResponseFormat, StreamEncoder
from .problems import HttpProblem

_LOGGER = logging.getLogger(__name__)


class SpeechStreams:
    """Runs speech responses for one HTTP door, a bounded number at once."""

    def __init__(self, core: Core, max_streams: int, max_text_chars: int) -> None:
        self._core = core
        self._max_streams = max_streams
        self._running = 0
        self.max_text_chars = max_text_chars
        """Longest text one response speaks (the server's --max-text-chars)."""

    async def respond(
        self, request: web.Request, text: str, voice: Voice, fmt: ResponseFormat
    ) -> web.StreamResponse:
        """Speak `text` in `voice` as a file of format `fmt`, streamed as it is made."""
        if len(text) > self.max_text_chars:
            raise HttpProblem(
                ErrorCode.TEXT_TOO_LONG,
                f"The text is {len(text)} characters long; this server speaks at most "
                f"{self.max_text_chars} in one request (--max-text-chars).",
                "input",
            )
        if self._running >= self._max_streams:
            raise HttpProblem(
                ErrorCode.TOO_MANY_REQUESTS,
                f"{self._max_streams} speech requests are already running here; try again "
                "when one has finished.",
            )
        self._running += 1
        try:
            return await self._stream(request, text, voice, fmt)
        finally:
            self._running -= 1

    async def _stream(
        self, request: web.Request, text: str, voice: Voice, fmt: ResponseFormat
    ) -> web.StreamResponse:
        speaking = self._core.speaking
        encoder = await asyncio.to_thread(StreamEncoder, fmt, speaking.sample_rate)
        async with aclosing(speaking.speak(whole_text(text), voice)) as chunks:
            try:
                first = await anext(chunks, b"")
            except SpeechError as error:
                encoder.close()
                raise HttpProblem.from_speech(error) from None
            except Exception:
                encoder.close()
                _LOGGER.exception("Unexpected failure while speaking for an HTTP client")
                raise HttpProblem(
                    ErrorCode.SYNTHESIS_FAILED,
                    "The server failed while speaking; see its log for details.",
                ) from None
            response = web.StreamResponse(
                headers={
                    "Content-Type": fmt.content_type,
                    "Cache-Control": "no-store",
                    "X-Sample-Rate": str(speaking.sample_rate),
                }
            )
            response.enable_chunked_encoding()
            await response.prepare(request)
            try:
                await response.write(await asyncio.to_thread(encoder.push, first))
                async for chunk in chunks:
                    data = await asyncio.to_thread(encoder.push, chunk)
                    if data:
                        await response.write(data)
                await response.write(await asyncio.to_thread(encoder.finish))
            except ConnectionError:
                encoder.close()
                _LOGGER.debug("The HTTP client went away during its speech")
                return response
            except SpeechError as error:
                _LOGGER.warning(
                    "Speech for an HTTP client failed after its audio began (%s: %s); "
                    "breaking the response off",
                    error.code,
                    error.message,
                )
                return _broken_off(request, response, encoder)
            except Exception:
                _LOGGER.exception(
                    "Unexpected failure after an HTTP client's audio began; breaking it off"
                )
                return _broken_off(request, response, encoder)
        await response.write_eof()
        return response


def _broken_off(
    request: web.Request, response: web.StreamResponse, encoder: StreamEncoder
) -> web.StreamResponse:
    """End the connection without the chunked body's last chunk: the client sees a broken
    reply, not a finished file."""
    encoder.close()
    if request.transport is not None:
        request.transport.abort()
    return response
