"""XTTS-v2's GPT stepping several sentences at once: one batched token step for all of them.

On a CPU a token step is bound by reading every GPT weight once (see `benchmarks/hardware_limits`):
a step for four sentences reads the same weights as a step for one, so four clients speaking
at once share the cost instead of waiting for each other's whole sentences.

Built from coqui-tts' public model pieces (the text and audio-token embeddings, the GPT-2
transformer, the final norm and the audio-token head), the same pieces and in the same order
as coqui-tts' own streaming generator, so a sentence alone in the batch samples the tokens
`Xtts.inference_stream` would sample (with the voice's conditioning run once, as a cached
prefix, rather than again in every sentence's prompt). Sentences of different lengths share one
key/value cache, left-padded and masked: the transformer has no position embeddings of its own
(XTTS adds positions to its inputs), so padding shifts nothing.

Sampling follows transformers' order (repetition penalty, temperature, top-k, top-p) with one
random generator per sentence: a seeded voice speaks the same, whoever else is in the batch.
"""

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from transformers import DynamicCache
from TTS.tts.layers.xtts.gpt import GPT

from ...core.generation import GenerationSettings

PROMPT_FILLER_TOKEN = 1
"""The id coqui-tts' generator gives each prompt position, which the repetition penalty sees."""


class TokenSampler:
    """One sentence's draw of its next audio token, as transformers' sampling does it.

    The repetition penalty covers every token id the sentence has fed the GPT so far: the
    audio start token, the generated ones, and (as coqui-tts' generator does) the filler id of
    the prompt's positions.
    """

    def __init__(
        self, settings: GenerationSettings, generator: torch.Generator | None, seen: Sequence[int]
    ) -> None:
        self._settings = settings
        self._generator = generator
        self._seen = sorted(set(seen))

    def draw(self, logits: torch.Tensor) -> int:
        """The next token for `logits` (one row of audio-token scores, float32)."""
        settings = self._settings
        scores = logits.unsqueeze(0)
        if settings.repetition_penalty != 1.0 and self._seen:
            seen = torch.tensor([self._seen], device=scores.device)
            penalised = scores.gather(1, seen)
            penalty = float(settings.repetition_penalty)
            penalised = torch.where(penalised < 0, penalised * penalty, penalised / penalty)
            scores = scores.scatter(1, seen, penalised)
        if settings.temperature != 1.0:
            scores = scores / settings.temperature
        if settings.top_k:
            kth_best = torch.topk(scores, min(settings.top_k, scores.size(-1)))[0][..., -1, None]
            scores = scores.masked_fill(scores < kth_best, -float("inf"))
        if settings.top_p < 1.0:
            ascending, order = torch.sort(scores, descending=False)
            below = ascending.softmax(dim=-1).cumsum(dim=-1) <= (1 - settings.top_p)
            below[..., -1:] = False
            scores = scores.masked_fill(below.scatter(1, order, below), -float("inf"))
        probabilities = torch.nn.functional.softmax(scores, dim=-1)
        token = int(torch.multinomial(probabilities, 1, generator=self._generator).item())
        if token not in self._seen:
            self._seen = sorted((*self._seen, token))
        return token


@dataclass(frozen=True)
class VoicePrefix:
    """A voice's conditioning, as the GPT's keys and values at the positions it fills.

    Every sentence's prompt begins with its voice's conditioning latents, and the transformer
    has no position embeddings of its own, so these keys and values are the same for every
    sentence in the voice: computed once, they spare each sentence half its prompt pass.
    """

    layers: tuple[tuple[torch.Tensor, torch.Tensor], ...]
    """Keys and values per transformer layer, (1, heads, positions, head width) each."""

    length: int
    """Conditioning positions (32 for XTTS-v2)."""

    @property
    def nbytes(self) -> int:
        """Memory the prefix holds (8 MB for the released model)."""
        return sum(keys.nbytes + values.nbytes for keys, values in self.layers)


@dataclass(frozen=True)
class StepOutput:
    """What one position of the GPT gives a sentence."""

    latent: torch.Tensor
    """The normalised hidden state (model width) the waveform decoder turns into audio."""

    logits: torch.Tensor
    """float32 scores of the next audio token."""


KeysValues = Sequence[tuple[torch.Tensor, torch.Tensor]]
"""Per transformer layer, keys and values (rows, heads, positions, head width) each."""


class TokenBatch(Protocol):
    """What the sentence batcher asks of a batch of sentences stepping together, whichever
    runtime computes the GPT: `GptBatch` (PyTorch) or `onnx_gpt.OnnxGptBatch`."""

    @property
    def rows(self) -> int:
        """Sentences in the batch."""

    @property
    def stop_token(self) -> int:
        """The audio token that ends a sentence."""

    def sampler(
        self, settings: GenerationSettings, generator: torch.Generator | None
    ) -> "TokenSampler":
        """A sampler for a sentence about to join."""

    def voice_prefix(self, cond_latent: torch.Tensor) -> "VoicePrefix":
        """The keys and values of a voice's conditioning positions, for `join`."""

    def join(self, prefix: "VoicePrefix", text_tokens: torch.Tensor) -> "StepOutput":
        """Add a sentence as the last row; what its prompt's last position predicts."""

    def step(self, tokens: Sequence[int]) -> "list[StepOutput]":
        """Feed each row its next token; what each row's new position predicts."""

    def leave(self, rows: Sequence[int]) -> None:
        """Drop these rows; the others keep their order."""


def prompt_embeddings(gpt: GPT, text_tokens: torch.Tensor) -> torch.Tensor:
    """A sentence's prompt after its voice's prefix: the text between its start and stop
    tokens, then the audio start token, each with its position, (1, positions, width)."""
    text = torch.nn.functional.pad(text_tokens.unsqueeze(0), (1, 0), value=gpt.start_text_token)
    text = torch.nn.functional.pad(text, (0, 1), value=gpt.stop_text_token)
    start = torch.full((1, 1), gpt.start_audio_token, dtype=torch.long, device=text.device)
    text_embedding = gpt.text_embedding(text) + gpt.text_pos_embedding(text)
    audio_embedding = gpt.mel_embedding(start) + gpt.mel_pos_embedding(start)
    return torch.cat([text_embedding, audio_embedding], dim=1)


def step_embeddings(gpt: GPT, tokens: Sequence[int], positions: Sequence[int]) -> torch.Tensor:
    """Each row's next audio token at its audio position, (rows, 1, width)."""
    device = gpt.mel_embedding.weight.device
    fed = torch.tensor(tokens, dtype=torch.long, device=device).unsqueeze(1)
    at = torch.tensor(positions, dtype=torch.long, device=device).unsqueeze(1)
    embedding: torch.Tensor = gpt.mel_embedding(fed) + gpt.mel_pos_embedding.emb(at)
    return embedding


def merge_rows(
    layers: KeysValues, mask: torch.Tensor, new_layers: KeysValues, length: int
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """Rows' keys and values with a one-row cache of `length` positions appended as the last
    row, whichever is shorter left-padded, and the mask (1 real, 0 padding) that goes with
    them."""
    new_mask = torch.ones((1, length), dtype=torch.long, device=mask.device)
    width = max(length, mask.shape[1])
    merged_mask = torch.cat([_left_pad(mask, width), _left_pad(new_mask, width)], dim=0)
    merged = [
        (
            torch.cat([_left_pad(keys, width), _left_pad(new_keys, width)], dim=0),
            torch.cat([_left_pad(values, width), _left_pad(new_values, width)], dim=0),
        )
        for (keys, values), (new_keys, new_values) in zip(layers, new_layers, strict=True)
    ]
    return merged, merged_mask


def keep_rows(
    layers: KeysValues, mask: torch.Tensor, kept: Sequence[int]
) -> tuple[list[tuple[torch.Tensor, torch.Tensor]], torch.Tensor]:
    """Only the `kept` rows' keys, values and mask, without the padding only the others
    needed."""
    index = torch.tensor(kept, dtype=torch.long, device=mask.device)
    mask = mask.index_select(0, index)
    first_real = int(mask.any(dim=0).nonzero()[0].item())
    return [
        (
            keys.index_select(0, index)[:, :, first_real:],
            values.index_select(0, index)[:, :, first_real:],
        )
        for keys, values in layers
    ], mask[:, first_real:]


class BatchRows:
    """What every `TokenBatch` keeps alike, whichever runtime runs the transformer: its rows'
    next audio positions, the stop token, and the sampler a joining sentence gets."""

    def __init__(self, gpt: GPT) -> None:
        self._gpt = gpt
        self._positions: list[int] = []  # audio position of each row's next input token

    @property
    def rows(self) -> int:
        """Sentences in the batch."""
        return len(self._positions)

    @property
    def stop_token(self) -> int:
        """The audio token that ends a sentence."""
        return int(self._gpt.stop_audio_token)

    def sampler(
        self, settings: GenerationSettings, generator: torch.Generator | None
    ) -> TokenSampler:
        """A sampler for a sentence about to join, having seen what its prompt feeds the GPT."""
        return TokenSampler(settings, generator, (PROMPT_FILLER_TOKEN, self._gpt.start_audio_token))


class GptBatch(BatchRows):
    """The key/value cache and mask of the sentences the GPT is generating, one row each.

    Rows join with their prompt (`join`), advance together one token each (`step`) and leave
    in any order (`leave`). Runs on the model thread only.
    """

    def __init__(
        self,
        gpt: GPT,
        gpt_context: Callable[[], AbstractContextManager[None]],
    ) -> None:
        super().__init__(gpt)
        self._context = gpt_context
        self._cache: DynamicCache | None = None
        self._mask: torch.Tensor | None = None  # (rows, cached positions): 1 real, 0 padding

    def voice_prefix(self, cond_latent: torch.Tensor) -> VoicePrefix:
        """The keys and values of a voice's conditioning positions, for `join`."""
        with self._context():
            cache = DynamicCache()
            self._gpt.gpt(inputs_embeds=cond_latent, past_key_values=cache, use_cache=True)
        return VoicePrefix(
            layers=tuple((keys, values) for keys, values, _ in cache),
            length=cond_latent.shape[1],
        )

    def join(self, prefix: VoicePrefix, text_tokens: torch.Tensor) -> StepOutput:
        """Add a sentence as the last row: run its prompt (text, audio start) after its voice's
        prefix, alone.

        Returns what the prompt's last position predicts: the first token's latent and scores.
        """
        gpt = self._gpt
        with self._context():
            prompt = prompt_embeddings(gpt, text_tokens)
            cache = DynamicCache(ddp_cache_data=prefix.layers)  # copies: the prefix stays as is
            hidden = gpt.gpt(
                inputs_embeds=prompt, past_key_values=cache, use_cache=True, return_dict=True
            ).last_hidden_state
            output = self._output(hidden[:, -1])
        self._merge(cache, prefix.length + prompt.shape[1])
        self._positions.append(1)
        return StepOutput(output.latent[0], output.logits[0])

    def step(self, tokens: Sequence[int]) -> list[StepOutput]:
        """Feed each row its next token (in row order); what each row's new position predicts."""
        assert self._cache is not None and self._mask is not None
        assert len(tokens) == self.rows, "one token per row"
        gpt = self._gpt
        self._mask = torch.cat([self._mask, self._mask.new_ones((self.rows, 1))], dim=1)
        with self._context():
            embedding = step_embeddings(gpt, tokens, self._positions)
            hidden = gpt.gpt(
                inputs_embeds=embedding,
                past_key_values=self._cache,
                attention_mask=self._mask,
                use_cache=True,
                return_dict=True,
            ).last_hidden_state
            output = self._output(hidden[:, -1])
        self._positions = [position + 1 for position in self._positions]
        return [StepOutput(output.latent[row], output.logits[row]) for row in range(self.rows)]

    def leave(self, rows: Sequence[int]) -> None:
        """Drop these rows; the others keep their order."""
        if not rows:
            return
        gone = set(rows)
        kept = [row for row in range(self.rows) if row not in gone]
        self._positions = [self._positions[row] for row in kept]
        if not kept:
            self._cache = None
            self._mask = None
            return
        assert self._cache is not None and self._mask is not None
        # Padding that only the departed rows needed is dropped with them.
        layers, self._mask = keep_rows(_pairs(self._cache), self._mask, kept)
        self._cache = DynamicCache(ddp_cache_data=layers)

    def _output(self, hidden: torch.Tensor) -> StepOutput:
        latent = self._gpt.final_norm(hidden)
        return StepOutput(latent, self._gpt.mel_head(latent).float())

    def _merge(self, cache: DynamicCache, length: int) -> None:
        """Append a one-row cache of `length` positions, left-padding whichever is shorter."""
        new_mask = torch.ones((1, length), dtype=torch.long, device=self._device(cache))
        if self._cache is None or self._mask is None:
            self._cache, self._mask = cache, new_mask
            return
        layers, self._mask = merge_rows(_pairs(self._cache), self._mask, _pairs(cache), length)
        self._cache = DynamicCache(ddp_cache_data=layers)

    @staticmethod
    def _device(cache: DynamicCache) -> torch.device:
        keys, _, _ = next(iter(cache))
        device: torch.device = keys.device
        return device


class VoicePrefixes:
    """The prefixes of the voices spoken last, so a voice's next sentence skips its
    conditioning positions (model thread only)."""

    def __init__(self, capacity: int = 8) -> None:
        self._capacity = capacity
        self._prefixes: OrderedDict[bytes, VoicePrefix] = OrderedDict()

    def get(self, batch: TokenBatch, cond_latent: np.ndarray, device: str) -> VoicePrefix:
        """The prefix of this conditioning, computed through `batch` if not kept."""
        key = hashlib.blake2b(cond_latent.tobytes(), digest_size=16).digest()
        prefix = self._prefixes.get(key)
        if prefix is None:
            prefix = batch.voice_prefix(torch.from_numpy(cond_latent).to(device))
            self._prefixes[key] = prefix
            if len(self._prefixes) > self._capacity:
                self._prefixes.popitem(last=False)
        self._prefixes.move_to_end(key)
        return prefix


def _pairs(cache: DynamicCache) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(keys, values) for keys, values, _ in cache]


def _left_pad(tensor: torch.Tensor, width: int) -> torch.Tensor:
    """Zero-pad the sequence dimension (last for masks, third for keys and values) to `width`."""
    sequence_dim = tensor.dim() - 1 if tensor.dim() == 2 else 2
    missing = width - tensor.shape[sequence_dim]
    if missing == 0:
        return tensor
    shape = list(tensor.shape)
    shape[sequence_dim] = missing
    return torch.cat([tensor.new_zeros(shape), tensor], dim=sequence_dim)
