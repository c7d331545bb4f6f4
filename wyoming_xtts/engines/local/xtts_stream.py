"""One sentence of XTTS-v2 speech, token by token, audio in growing pieces.

The GPT's steps come from `gpt_batch.GptBatch` (shared with the other sentences being
generated); this is what happens to one sentence's share of each step. It differs from
coqui-tts' `Xtts.inference_stream` where that costs time:

- the first piece of audio is decoded after a few tokens, and later pieces grow, so sound
  starts early and the per-piece overhead stays small on long sentences;
- each latent is decoded once (`StreamingDecoder`) instead of re-decoding the whole sentence
  at every piece;
- the caller can stop generation between any two tokens, not only between pieces;
- generation is bounded by the longest plausible reading of the text (`speech_budget`), so a
  babbling sample is stopped at the source instead of after the fact.
"""

import logging
import math
import time
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from TTS.tts.models.xtts import Xtts

from ...core.audio import XTTS_OUTPUT_RATE, XTTS_REFERENCE_RATE
from ...core.errors import ErrorCode, SpeechError
from ...text.speech_budget import max_speech_seconds
from .gpt_batch import StepOutput, TokenSampler
from .streaming_decoder import DecoderGeometry, StreamingDecoder

_LOGGER = logging.getLogger(__name__)

SECONDS_PER_TOKEN = 1024 / XTTS_REFERENCE_RATE
"""Audio one GPT token stands for (before any speed change): 46.4 ms."""


@dataclass(frozen=True)
class ChunkSchedule:
    """How many tokens make each piece of audio.

    Each piece after the first is as long as all audio sent so far (capped): when generation
    runs at least at real time, the next piece is ready before the audio already sent has
    played, while the number of pieces, each carrying a fixed decoding overhead, stays small.
    """

    first_tokens: int
    """Tokens before the first piece is decoded (`--first-chunk-tokens`)."""

    max_tokens: int = 48
    """Upper bound for any later piece (2.2 s of speech)."""

    def next_size(self, tokens_so_far: int) -> int:
        """Tokens in the piece that follows `tokens_so_far` generated tokens."""
        if tokens_so_far == 0:
            return self.first_tokens
        return max(self.first_tokens, min(self.max_tokens, tokens_so_far))


def decoder_geometry(model: Xtts) -> DecoderGeometry:
    """The latent → frame mapping of the loaded model's decoder."""
    decoder = model.hifigan_decoder
    return DecoderGeometry(
        latent_to_frame=decoder.ar_mel_length_compression / decoder.output_hop_length,
        rate_ratio=decoder.output_sample_rate / decoder.input_sample_rate,
    )


def text_tokens(model: Xtts, text: str, language: str) -> torch.Tensor:
    """The sentence as XTTS text tokens; `TEXT_TOO_LONG` beyond what the model takes."""
    tokens = model.tokenizer.encode(text.strip().lower(), lang=language)
    if len(tokens) >= model.args.gpt_max_text_tokens:
        raise SpeechError(
            ErrorCode.TEXT_TOO_LONG,
            f"This sentence is {len(tokens)} XTTS-v2 text tokens; the model takes fewer than "
            f"{model.args.gpt_max_text_tokens}.",
        )
    return torch.tensor(tokens, dtype=torch.int32)


def token_budget(model: Xtts, text: str, language: str) -> int:
    """Most GPT tokens this text may take: its speech budget, at most the model's own cap."""
    budget = math.floor(max_speech_seconds(text, language) / SECONDS_PER_TOKEN)
    return max(1, min(budget, int(model.gpt.max_gen_mel_tokens)))


class PieceSink(Protocol):
    """Where one sentence's audio goes (`offload.Handoff` for a client)."""

    @property
    def abandoned(self) -> bool:
        """Nobody listens any more: generation stops at the next token."""

    def put(self, item: np.ndarray) -> bool:
        """One piece of float32 audio at the decoder's rate; False if nobody listens."""

    def fail(self, error: BaseException) -> None:
        """The sentence cannot be spoken."""

    def finish(self) -> None:
        """All the sentence's audio was put."""


class SentenceGeneration:
    """One sentence being generated: draws its tokens, decodes its audio, sends its pieces."""

    def __init__(
        self,
        text: str,
        sampler: TokenSampler,
        decoder: StreamingDecoder,
        stop_token: int,
        budget: int,
        schedule: ChunkSchedule,
        sink: PieceSink,
    ) -> None:
        self.text = text
        """The sentence, for the log."""
        self.sink = sink
        self._sampler = sampler
        self._decoder = decoder
        self._stop_token = stop_token
        self._budget = budget
        self._schedule = schedule
        self._generated = 0
        self._piece_size = schedule.next_size(0)
        self._started = time.perf_counter()
        self._decoding = 0.0  # seconds spent in the decoder, for the debug log
        self._samples = 0

    def advance(self, output: StepOutput) -> int | None:
        """Take the GPT's prediction for this sentence's next position.

        Returns the token to feed next, or None when the sentence is over: its audio is then
        complete in the sink (or nobody wants it any more).
        """
        if self.sink.abandoned:
            return None
        token = self._sampler.draw(output.logits)
        # As in coqui-tts' streaming, the stop token's latent is audio too (the last frame).
        self._decoder.add(output.latent)
        self._generated += 1
        if token == self._stop_token:
            self._finish()
            return None
        if self._generated >= self._budget:
            _LOGGER.warning(
                "Stopped generating %r at %.1f s: longer than the text can take (babble)",
                self.text,
                self._generated * SECONDS_PER_TOKEN,
            )
            self._finish()
            return None
        if self._decoder.pending_latents >= self._piece_size:
            piece = self._decode()
            self._piece_size = self._schedule.next_size(self._generated)
            if piece.size and not self.sink.put(piece):
                return None
        return token

    def _decode(self, final: bool = False) -> np.ndarray:
        started = time.perf_counter()
        piece = self._decoder.take_audio(final)
        self._decoding += time.perf_counter() - started
        self._samples += piece.size
        return piece

    def _finish(self) -> None:
        if self.sink.put(self._decode(final=True)):
            self.sink.finish()
        if _LOGGER.isEnabledFor(logging.DEBUG):
            # Where a sentence's time went (the rest is its GPT steps, shared with the other
            # sentences of the batch, and sampling): says whether a machine is real time.
            audio = self._samples / XTTS_OUTPUT_RATE
            took = time.perf_counter() - self._started
            _LOGGER.debug(
                "Spoke %r: %.2f s of audio in %.2f s (RTF %.2f), decoding %.2f s (RTF %.2f)",
                self.text,
                audio,
                took,
                took / audio if audio else 0.0,
                self._decoding,
                self._decoding / audio if audio else 0.0,
            )
