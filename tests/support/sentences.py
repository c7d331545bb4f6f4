"""Speaking sentences straight through the local engine's batcher, without a server.

For tests that look inside generation (steps taken, contexts entered, rows of a batch); they
use the engine's own pieces: `GptBatch`, `SentenceGeneration`, `SentenceBatcher`.
"""

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext

import numpy as np
import torch
import torch.nn.functional as F
from TTS.tts.models.xtts import Xtts

from wyoming_xtts.core.generation import GenerationSettings
from wyoming_xtts.core.voices import Voice
from wyoming_xtts.engines.local.gpt_batch import GptBatch, TokenBatch
from wyoming_xtts.engines.local.sentence_batcher import (
    PreparedSentence,
    SentenceBatcher,
    SentenceRequest,
)
from wyoming_xtts.engines.local.streaming_decoder import StreamingDecoder
from wyoming_xtts.engines.local.xtts_stream import (
    ChunkSchedule,
    SentenceGeneration,
    decoder_geometry,
    text_tokens,
    token_budget,
)


class CollectingSink:
    """Keeps a sentence's pieces; with `pieces_wanted`, hangs up after that many."""

    def __init__(self, pieces_wanted: int | None = None) -> None:
        self.pieces: list[np.ndarray] = []
        self.error: BaseException | None = None
        self.finished = False
        self._wanted = pieces_wanted

    @property
    def abandoned(self) -> bool:
        return self._wanted is not None and len(self.pieces) >= self._wanted

    def put(self, item: np.ndarray) -> bool:
        self.pieces.append(item)
        return not self.abandoned

    def fail(self, error: BaseException) -> None:
        self.error = error

    def finish(self) -> None:
        self.finished = True


def speak_directly(
    model: Xtts,
    texts: Sequence[str],
    sinks: Sequence[CollectingSink],
    first_tokens: int = 8,
    seeds: Sequence[int] | None = None,
    gpt_context: Callable[[], AbstractContextManager[None]] = nullcontext,
    new_batch: Callable[[], TokenBatch] | None = None,
) -> None:
    """Generate `texts` together (one batch) on this thread, with silent conditioning; in
    PyTorch's `GptBatch` unless `new_batch` makes another."""
    geometry = decoder_geometry(model)
    schedule = ChunkSchedule(first_tokens=first_tokens)
    seeds = seeds or [7] * len(texts)

    def prepare(request: SentenceRequest, batch: TokenBatch) -> PreparedSentence:
        seed = seeds[texts.index(request.text)]
        decoder = StreamingDecoder(
            model.hifigan_decoder.waveform_decoder,
            F.normalize(torch.ones(1, 512, 1), dim=1),
            geometry,
        )
        return PreparedSentence(
            prefix=batch.voice_prefix(torch.zeros(1, 32, model.gpt.model_dim)),
            text_tokens=text_tokens(model, request.text, request.language),
            sentence=SentenceGeneration(
                request.text,
                batch.sampler(GenerationSettings(seed=seed), torch.Generator().manual_seed(seed)),
                decoder,
                batch.stop_token,
                token_budget(model, request.text, request.language),
                schedule,
                request.sink,
            ),
        )

    with ThreadPoolExecutor(max_workers=1) as unused:
        batcher = SentenceBatcher(
            unused,
            len(texts),
            new_batch or (lambda: GptBatch(model.gpt, gpt_context)),
            prepare,
        )
        voice = Voice(name="silent", languages=("en",))
        requests = [
            SentenceRequest(text, "en", voice, sink)
            for text, sink in zip(texts, sinks, strict=True)
        ]
        batcher.run_here(requests)
