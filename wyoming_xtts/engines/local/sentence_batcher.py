"""Every sentence the local model is asked for, generated together on the model thread.

Sentences arrive from any number of connections (`submit`, from the event loop). One worker on
the model thread runs while there is work: at each step boundary it lets waiting sentences join
(up to `max_rows`, each with its prompt pass), runs one GPT step for all of them at once, then
lets each sentence in turn take its token and decode its audio. A sentence whose listener went
away leaves at the next step; one that fails fails alone; the others never wait for a whole
sentence, only for a step and the pieces decoded in it.
"""

import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass

import torch

from ...core.errors import ErrorCode, SpeechError
from ...core.voices import Voice
from .conditioning import Conditioning
from .gpt_batch import StepOutput, TokenBatch, VoicePrefix
from .xtts_stream import PieceSink, SentenceGeneration

_LOGGER = logging.getLogger(__name__)

_MODEL_FAILURES = (RuntimeError, AssertionError, ValueError, KeyError)
"""What PyTorch and coqui-tts raise when generation itself goes wrong."""


@dataclass(frozen=True)
class SentenceRequest:
    """One sentence a client is waiting for."""

    text: str
    """The sentence, as the text pipeline made it."""

    language: str
    """XTTS language code to speak it in."""

    voice: Voice
    """Whose voice, with its generation settings."""

    sink: PieceSink
    """Where its audio goes."""

    conditioning: Conditioning | None = None
    """The voice's conditioning given directly (the warm-up's noise); None: the voice's own."""


@dataclass(frozen=True)
class PreparedSentence:
    """A sentence ready to join the batch (made on the model thread)."""

    prefix: VoicePrefix
    """The voice's conditioning, as the GPT's keys and values."""

    text_tokens: torch.Tensor
    """The sentence's XTTS text tokens, (tokens,)."""

    sentence: SentenceGeneration
    """Its sampler, decoder and listener."""


class SentenceBatcher:
    """Generates up to `max_rows` sentences at once on the model thread."""

    def __init__(
        self,
        executor: Executor,
        max_rows: int,
        new_batch: Callable[[], TokenBatch],
        prepare: Callable[[SentenceRequest, TokenBatch], PreparedSentence],
        ready: Callable[[], None] | None = None,
    ) -> None:
        """`ready` runs on the model thread before a worker's first batch, outside inference
        mode, while someone is waiting for a sentence (the engine loads its model again there
        after an idle unload); a `SpeechError` from it fails every waiting sentence."""
        self._executor = executor
        self._max_rows = max_rows
        self._new_batch = new_batch
        self._prepare = prepare
        self._ready = ready
        self._lock = threading.Lock()
        self._waiting: deque[SentenceRequest] = deque()
        self._running = False  # a worker is (or is about to be) on the model thread

    def submit(self, request: SentenceRequest) -> None:
        """Queue a sentence; a worker starts on the model thread unless one runs already."""
        with self._lock:
            self._waiting.append(request)
            if self._running:
                return
            self._running = True
        try:
            self._executor.submit(self._work)
        except RuntimeError:  # the executor was shut down: the engine is closing
            with self._lock:
                self._running = False
                self._waiting.clear()
            request.sink.fail(SpeechError(ErrorCode.SYNTHESIS_FAILED, "The engine is closing."))

    def run_here(self, requests: Sequence[SentenceRequest]) -> None:
        """Generate these sentences on the calling thread, which must be the model thread with
        no worker running (the engine's warm-up)."""
        with self._lock:
            assert not self._running, "only before any sentence was submitted"
            self._waiting.extend(requests)
            self._running = True
        self._work()

    def _work(self) -> None:
        rows: list[SentenceGeneration] = []
        tokens: list[int] = []
        try:
            if not self._made_ready():
                return
            with torch.inference_mode():
                batch = self._new_batch()
                while True:
                    self._admit(batch, rows, tokens)
                    if not rows:
                        with self._lock:
                            if not self._waiting:
                                self._running = False
                                return
                        continue
                    try:
                        outputs = batch.step(tokens)
                    except _MODEL_FAILURES as err:
                        failure = _failure(
                            err, "a step of " + ", ".join(repr(s.text) for s in rows)
                        )
                        for sentence in rows:
                            sentence.sink.fail(failure)
                        rows.clear()
                        tokens.clear()
                        batch = self._new_batch()
                        continue
                    self._advance_all(batch, rows, tokens, outputs)
        except BaseException as err:
            # A fault outside the model (a bug): nobody may be left waiting for a worker.
            with self._lock:
                stranded = [*(sentence.sink for sentence in rows), *(r.sink for r in self._waiting)]
                self._waiting.clear()
                self._running = False
            failure = _failure(err, "the model thread")
            for sink in stranded:
                sink.fail(failure)
            raise

    def _made_ready(self) -> bool:
        """Whether this worker goes on: someone is listening and `ready` succeeded. When all
        waiting sentences were abandoned it stops here, so no model is loaded for nobody."""
        with self._lock:
            if all(request.sink.abandoned for request in self._waiting):
                self._waiting.clear()
                self._running = False
                return False
        if self._ready is None:
            return True
        try:
            self._ready()
        except SpeechError as err:
            with self._lock:
                waiting = list(self._waiting)
                self._waiting.clear()
                self._running = False
            for request in waiting:
                request.sink.fail(err)
            return False
        return True

    def _admit(self, batch: TokenBatch, rows: list[SentenceGeneration], tokens: list[int]) -> None:
        while len(rows) < self._max_rows:
            with self._lock:
                if not self._waiting:
                    return
                request = self._waiting.popleft()
            if request.sink.abandoned:
                continue
            try:
                prepared = self._prepare(request, batch)
                first = batch.join(prepared.prefix, prepared.text_tokens)
            except SpeechError as err:
                request.sink.fail(err)
                continue
            except _MODEL_FAILURES as err:
                request.sink.fail(_failure(err, repr(request.text)))
                continue
            token = _advance(prepared.sentence, first)
            if token is None:
                batch.leave([batch.rows - 1])
                continue
            rows.append(prepared.sentence)
            tokens.append(token)

    @staticmethod
    def _advance_all(
        batch: TokenBatch,
        rows: list[SentenceGeneration],
        tokens: list[int],
        outputs: list[StepOutput],
    ) -> None:
        leaving = []
        for row, (sentence, output) in enumerate(zip(rows, outputs, strict=True)):
            token = _advance(sentence, output)
            if token is None:
                leaving.append(row)
            else:
                tokens[row] = token
        if leaving:
            batch.leave(leaving)
            rows[:] = [sentence for row, sentence in enumerate(rows) if row not in leaving]
            tokens[:] = [token for row, token in enumerate(tokens) if row not in leaving]


def _advance(sentence: SentenceGeneration, output: StepOutput) -> int | None:
    try:
        return sentence.advance(output)
    except _MODEL_FAILURES as err:
        sentence.sink.fail(_failure(err, repr(sentence.text)))
        return None


def _failure(err: BaseException, what: str) -> SpeechError:
    _LOGGER.error("XTTS-v2 failed on %s", what, exc_info=err)
    return SpeechError(ErrorCode.SYNTHESIS_FAILED, f"XTTS-v2 failed: {err}")
