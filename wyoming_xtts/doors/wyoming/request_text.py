"""One request's text on its way from the Wyoming handler to the speaking service.

A plain `synthesize` is a response whose text is complete at once; a stream's text arrives
chunk by chunk. Either way the speaking service reads it as an async iterator, and a
malformed request or one over the length limit ends the text with its error.
"""

import asyncio
from collections.abc import AsyncIterator

from ...core.errors import ErrorCode, SpeechError
from ...text.markup import TextFormat

_END_OF_TEXT = None


class RequestText:
    """The text of one request on its way to the synthesis service."""

    def __init__(
        self,
        voice_name: str | None,
        streaming: bool,
        max_chars: int,
        style: str | None = None,
        text_format: TextFormat = TextFormat.TEXT,
    ) -> None:
        self.voice_name = voice_name
        self.style = style
        """The request's `speaker`: a speaking style of the voice (None: its plain clips)."""
        self.text_format = text_format
        """Plain text, or SSML to interpret."""
        self.streaming = streaming
        self.client_stopped = asyncio.Event()
        """Set when the client has sent everything (immediately for a plain request)."""
        self._max_chars = max_chars
        self._chars = 0
        self._pieces: asyncio.Queue[str | SpeechError | None] = asyncio.Queue()
        self._closed = False
        self.failure: SpeechError | None = None
        """Set when the request itself is malformed: answered with this error, no audio."""

    def add_text(self, text: str) -> None:
        """Queue a piece of text; past the length limit, queue the error instead."""
        if self._closed:
            return
        self._chars += len(text)
        if self._chars > self._max_chars:
            self.fail(
                SpeechError(
                    ErrorCode.TEXT_TOO_LONG,
                    f"The text is longer than this server's limit of {self._max_chars} "
                    "characters (--max-text-chars).",
                )
            )
        else:
            self._pieces.put_nowait(text)

    def fail(self, error: SpeechError) -> None:
        """End the text with an error: synthesis stops there and the client hears why."""
        if not self._closed:
            self._pieces.put_nowait(error)
            self._closed = True

    def end_text(self) -> None:
        """No more text will come."""
        if not self._closed:
            self._pieces.put_nowait(_END_OF_TEXT)
            self._closed = True

    def abandon(self) -> None:
        """Synthesis gave up on this response: drop whatever text still arrives."""
        self._closed = True

    async def text(self) -> AsyncIterator[str]:
        """The pieces of text as they arrive."""
        while (piece := await self._pieces.get()) is not _END_OF_TEXT:
            if isinstance(piece, SpeechError):
                raise piece
            yield piece
