"""What `--precision int8` changes in XTTS-v2's output, measured on one checkpoint.

Loads the checkpoint (by default a random-initialised one with the real architecture, as
`speed.py` builds), samples a sentence's audio tokens with the fp32 GPT, then quantises the
GPT exactly as the server does and compares, on the *same* token sequence (teacher forcing):

- the GPT latents the decoder turns into audio (relative RMS error),
- the next-token distributions (KL divergence, and how often the most likely token agrees),
- the decoded audio (signal-to-noise ratio of the int8 audio against the fp32 audio),

and, sampling freely with the same seed, after how many tokens the two sequences part.

Then, since the server generates several sentences in one batch: the same token sequences fed
to four sentences stepped together (`GptBatch`, as the server does) against each stepped
alone, in fp32 and in int8 (int8 quantises each step's activations across the whole batch, so
a sentence's numbers depend slightly on the others in its batch; fp32's do not).

Random weights lack the outlier activations of trained language models, which are what
usually hurts int8 most: run it with `--checkpoint` on the real weights to know for them.

    .venv/bin/python -m benchmarks.int8_effect [--checkpoint DIR] [--runs 5]
"""

import argparse
import contextlib
import statistics
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from TTS.tts.configs.xtts_config import XttsConfig
from TTS.tts.models.xtts import Xtts

from tests.support.xtts_checkpoint import RELEASE_SIZE, build_checkpoint
from wyoming_xtts.engines.local.gpt_batch import GptBatch
from wyoming_xtts.engines.local.precision import fold_weight_norm, quantize_gpt_int8

TEXTS = (
    "The washing machine is done.",
    "The garage door has been open for twenty minutes now.",
    "Tomorrow will be sunny with a light breeze from the west.",
)
TOKENS = 120
BATCH_COMPANION = "Someone is at the front door, and they brought a parcel for you."
"""A fourth sentence for the batch of four."""


def load(checkpoint: Path) -> Xtts:
    config = XttsConfig()
    config.load_json(str(checkpoint / "config.json"))
    model = Xtts(config)
    model.load_checkpoint(config, checkpoint_dir=str(checkpoint), eval=True)
    fold_weight_norm(model.hifigan_decoder.waveform_decoder)
    return model


def prompt(model: Xtts, text: str, latent: torch.Tensor) -> torch.Tensor:
    tokens = torch.tensor(model.tokenizer.encode(text.lower(), lang="en"), dtype=torch.int32)
    return model.gpt.compute_embeddings(latent, tokens.unsqueeze(0))


def sample(model: Xtts, text: str, latent: torch.Tensor, seed: int) -> list[int]:
    torch.manual_seed(seed)
    generator = model.gpt.get_generator(
        fake_inputs=prompt(model, text, latent),
        top_k=50,
        top_p=0.85,
        temperature=0.75,
        do_sample=True,
        num_beams=1,
        num_return_sequences=1,
        length_penalty=1.0,
        repetition_penalty=5.0,
        output_attentions=False,
        output_hidden_states=True,
        return_dict_in_generate=True,
    )
    tokens = []
    for token, _latent in generator:
        tokens.append(int(token))
        if len(tokens) == TOKENS:
            break
    generator.close()
    return tokens


def teacher_forced(
    model: Xtts, text: str, latent: torch.Tensor, tokens: list[int]
) -> tuple[torch.Tensor, torch.Tensor]:
    """Latents and next-token log-probabilities at every generated position, in one pass."""
    start = prompt(model, text, latent)
    sequence = torch.cat((start, torch.tensor([tokens[:-1]])), dim=1)
    output = model.gpt.gpt_inference(
        input_ids=sequence, use_cache=False, output_hidden_states=True, return_dict=True
    )
    first = start.shape[1] - 1  # the start-audio token's position predicts the first token
    latents = model.gpt.final_norm(output.hidden_states[-1][0, first:])
    return latents, F.log_softmax(output.logits[0, first:].float(), dim=-1)


def stepped(
    model: Xtts, texts: list[str], latent: torch.Tensor, sequences: list[list[int]]
) -> list[torch.Tensor]:
    """Each text's latents, its sentences stepped together in one batch, fed `sequences`."""
    batch = GptBatch(model.gpt, contextlib.nullcontext)
    latents = []
    for text in texts:
        tokens = torch.tensor(model.tokenizer.encode(text.lower(), lang="en"), dtype=torch.int32)
        latents.append([batch.join(batch.voice_prefix(latent), tokens).latent])
    for step in range(len(sequences[0]) - 1):
        for row, output in enumerate(batch.step([tokens[step] for tokens in sequences])):
            latents[row].append(output.latent)
    return [torch.stack(rows) for rows in latents]


def batch_effect(
    model: Xtts, latent: torch.Tensor, speaker: torch.Tensor, sequences: dict[str, list[int]]
) -> tuple[float, float]:
    """Largest relative RMS latent difference and smallest audio SNR (dB), batched vs alone."""
    shortest = min(len(tokens) for tokens in sequences.values())
    sequences = {text: tokens[:shortest] for text, tokens in sequences.items()}
    texts = list(sequences)
    together = stepped(model, texts, latent, list(sequences.values()))
    errors, snrs = [], []
    for text, batched in zip(texts, together, strict=True):
        (alone,) = stepped(model, [text], latent, [sequences[text]])
        errors.append(float((batched - alone).norm() / alone.norm()))
        audio = model.hifigan_decoder(alone.unsqueeze(0), g=speaker).reshape(-1)
        batched_audio = model.hifigan_decoder(batched.unsqueeze(0), g=speaker).reshape(-1)
        noise = (batched_audio - audio).pow(2).mean().clamp_min(1e-30)
        snrs.append(float(10 * torch.log10(audio.pow(2).mean() / noise)))
    return max(errors), min(snrs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path)
    parser.add_argument("--runs", type=int, default=5, help="sampled sequences per text")
    args = parser.parse_args()
    checkpoint = args.checkpoint
    if checkpoint is None:
        checkpoint = build_checkpoint(Path(tempfile.mkdtemp()) / "full", RELEASE_SIZE)
    model = load(checkpoint)
    speaker = F.normalize(torch.randn(1, 512, 1, generator=torch.Generator().manual_seed(1)), dim=1)
    conditioning = torch.randn(
        1, 32, model.gpt.model_dim, generator=torch.Generator().manual_seed(2)
    )

    cases = [(text, seed) for text in TEXTS for seed in range(args.runs)]
    with torch.inference_mode():
        reference = {}
        for text, seed in cases:
            tokens = sample(model, text, conditioning, seed)
            latents, log_probs = teacher_forced(model, text, conditioning, tokens)
            audio = model.hifigan_decoder(latents.unsqueeze(0), g=speaker).reshape(-1)
            reference[text, seed] = (tokens, latents, log_probs, audio)
        batch_texts = [*TEXTS, BATCH_COMPANION]
        sequences = {text: sample(model, text, conditioning, 0) for text in batch_texts}
        fp32_batch = batch_effect(model, conditioning, speaker, sequences)
        quantize_gpt_int8(model)
        int8_batch = batch_effect(model, conditioning, speaker, sequences)
        latent_error, kl, agree, snr, parted = [], [], [], [], []
        for text, seed in cases:
            tokens, latents, log_probs, audio = reference[text, seed]
            q_latents, q_log_probs = teacher_forced(model, text, conditioning, tokens)
            q_audio = model.hifigan_decoder(q_latents.unsqueeze(0), g=speaker).reshape(-1)
            latent_error.append(float((q_latents - latents).norm() / latents.norm()))
            kl.append(
                float(F.kl_div(q_log_probs, log_probs, log_target=True, reduction="batchmean"))
            )
            agree.append(float((q_log_probs.argmax(-1) == log_probs.argmax(-1)).float().mean()))
            noise = (q_audio - audio).pow(2).mean()
            snr.append(float(10 * torch.log10(audio.pow(2).mean() / noise)))
            free = sample(model, text, conditioning, seed)
            parted.append(
                next(
                    (i for i, (a, b) in enumerate(zip(tokens, free, strict=False)) if a != b),
                    TOKENS,
                )
            )

    print(f"{len(cases)} sequences of {TOKENS} tokens, medians (min-max):")
    for label, values, fmt in (
        ("GPT latent relative RMS error", latent_error, "{:.2%}"),
        ("next-token KL divergence (nats)", kl, "{:.1e}"),
        ("most likely token agrees", agree, "{:.1%}"),
        ("decoded audio SNR vs fp32 (dB)", snr, "{:.1f}"),
        ("free sampling, same seed: tokens before they part", parted, "{:.0f}"),
    ):
        low, mid, high = min(values), statistics.median(values), max(values)
        print(f"  {label:50} {fmt.format(mid)} ({fmt.format(low)}-{fmt.format(high)})")
    print(f"{len(batch_texts)} sentences stepped in one batch against each alone, same tokens:")
    for mode, (error, snr_db) in (("fp32", fp32_batch), ("int8", int8_batch)):
        print(
            f"  {mode}: largest GPT latent relative RMS difference {error:.2e}, "
            f"smallest audio SNR {snr_db:.1f} dB"
        )


if __name__ == "__main__":
    main()
