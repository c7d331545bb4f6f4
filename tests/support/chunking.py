"""Text cut at random places, as an LLM's deltas arrive (shared by the text pipeline's tests)."""

import random


def random_chunking(text: str, rng: random.Random, max_cuts: int) -> list[str]:
    """`text` cut at up to `max_cuts` random places (at least one), in order."""
    cuts = sorted(rng.sample(range(1, len(text)), k=rng.randint(1, min(max_cuts, len(text) - 1))))
    return [text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True)]
