"""One sentence of XTTS-v2 speech, token by token, audio in growing pieces.

Built on coqui-tts' public pieces: the tokenizer, `GPT.compute_embeddings`, the token-by-token
`GPT.get_generator` that `Xtts.inference_stream` uses, and the HiFi-GAN waveform decoder. It
differs from `inference_stream` where that costs time:

- the first piece of audio is decoded after a few tokens, and later pieces grow, so sound
  starts early and the per-piece overhead stays small on long sentences;
- each latent is decoded once (`StreamingDecoder`) instead of re-decoding the whole sentence
  at every piece;
- the caller can stop generation between any two tokens, not only between pieces;
- generation is bounded by the longest plausible reading of the text (`speech_budget`), so a
  babbling sample is stopped at the source instead of after the fact.
"""

import contextlib
import logging
import math
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from TTS.tts.models.xtts import Xtts

from ..core.audio import XTTS_REFERENCE_RATE
from ..core.errors import ErrorCode, SpeechError
from ..core.voices import GenerationSettings
from ..text.speech_budget import max_speech_seconds
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

    first_tokens: int = 8
    """Tokens before the first piece is decoded (8 tokens = 0.37 s of speech)."""

    max_tokens: int = 48
    """Upper bound for any later piece (2.2 s of speech)."""

    def next_size(self, tokens_so_far: int) -> int:
        """Tokens in the piece that follows `tokens_so_far` generated tokens."""
        if tokens_so_far == 0:
            return self.first_tokens
        return max(self.first_tokens, min(self.max_tokens, tokens_so_far))


def decoder_geometry(model: Xtts) -> DecoderGeometry:
    """The latent → frame → sample mapping of the loaded model's decoder."""
    decoder = model.hifigan_decoder
    return DecoderGeometry(
        latent_to_frame=decoder.ar_mel_length_compression / decoder.output_hop_length,
        rate_ratio=decoder.output_sample_rate / decoder.input_sample_rate,
        samples_per_frame=math.prod(int(layer.stride[0]) for layer in decoder.waveform_decoder.ups),
    )


def token_budget(model: Xtts, text: str, language: str) -> int:
    """Most GPT tokens this text may take: its speech budget, at most the model's own cap."""
    budget = math.floor(max_speech_seconds(text, language) / SECONDS_PER_TOKEN)
    return max(1, min(budget, int(model.gpt.max_gen_mel_tokens)))


def speak_sentence(
    model: Xtts,
    text: str,
    language: str,
    gpt_cond_latent: torch.Tensor,
    speaker_embedding: torch.Tensor,
    settings: GenerationSettings,
    schedule: ChunkSchedule,
    stop: threading.Event,
    gpt_context: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
) -> Iterator[np.ndarray]:
    """Yield float32 audio at the decoder's rate for one sentence, piece by piece.

    The GPT's steps run inside `gpt_context()` (e.g. fp16 autocast), the decoder outside it,
    in fp32. Returns early, between two tokens, once `stop` is set. Runs on the model thread.
    """
    with torch.inference_mode():
        tokens = model.tokenizer.encode(text.strip().lower(), lang=language)
        if len(tokens) >= model.args.gpt_max_text_tokens:
            raise SpeechError(
                ErrorCode.TEXT_TOO_LONG,
                f"This sentence is {len(tokens)} XTTS-v2 text tokens; the model takes fewer than "
                f"{model.args.gpt_max_text_tokens}.",
            )
        text_tokens = torch.tensor(tokens, dtype=torch.int32, device=gpt_cond_latent.device)
        with gpt_context():
            prompt = model.gpt.compute_embeddings(gpt_cond_latent, text_tokens.unsqueeze(0))
        generator = model.gpt.get_generator(
            fake_inputs=prompt,
            top_k=settings.top_k,
            top_p=settings.top_p,
            temperature=settings.temperature,
            do_sample=True,
            num_beams=1,
            num_return_sequences=1,
            length_penalty=float(settings.length_penalty),
            repetition_penalty=float(settings.repetition_penalty),
            output_attentions=False,
            output_hidden_states=True,
            return_dict_in_generate=True,
        )
        budget = token_budget(model, text, language)
        decoder = StreamingDecoder(
            model.hifigan_decoder.waveform_decoder,
            speaker_embedding,
            decoder_geometry(model),
            length_scale=1.0 / max(settings.speed, 0.05),
        )
        generated = 0
        piece_size = schedule.next_size(0)
        try:
            while True:
                with gpt_context():
                    step = next(generator, None)
                if step is None or stop.is_set():
                    break
                decoder.add(step[1])
                generated += 1
                if generated >= budget:
                    _LOGGER.warning(
                        "Stopped generating %r at %.1f s: longer than the text can take (babble)",
                        text,
                        generated * SECONDS_PER_TOKEN,
                    )
                    break  # the generator is lazy: no further token is computed
                if decoder.pending_latents >= piece_size:
                    piece = decoder.take_audio()
                    piece_size = schedule.next_size(generated)
                    if piece.size:
                        yield piece
            if not stop.is_set():
                yield decoder.take_audio(final=True)
        finally:
            generator.close()
