"""What the length of Replicate's `Prefer: wait` costs: first audio against hang-up cancels.

A prediction can only be canceled once its create request has answered with an id, and a
create with `Prefer: wait=N` answers after up to N seconds. A short wait cancels a client that
hung up sooner; a prediction that outlasts the wait is then polled, which can deliver its audio
a little later than a wait that covers it. Both are measured here, in one run, against the
test suite's local Replicate stand-in (the real service is not reachable from these machines):
the time from create to decoded audio minus the prediction's own duration, for predictions of
several lengths, and the time from a hang-up to the cancel reaching the provider.

    .venv/bin/python -m benchmarks.replicate_wait [--waits 10 4] [--runs 3]
"""

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from tests.support.clips import write_profile
from tests.support.fake_providers import REPLICATE_TOKEN, REPLICATE_VERSION, FakeReplicate
from wyoming_xtts.core.voices import VoiceLibrary
from wyoming_xtts.engines.cloud.engine import CloudJob
from wyoming_xtts.engines.cloud.http import RetryPolicy, Secret
from wyoming_xtts.engines.cloud.replicate import ReplicateProvider

PREDICTION_S = (1.0, 3.0, 5.0, 7.0, 12.0)
HANG_UP_AFTER_S = (0.5, 2.0, 3.5)


def provider(fake: FakeReplicate, wait: int) -> ReplicateProvider:
    return ReplicateProvider(
        f"{fake.base}/v1",
        Secret(REPLICATE_TOKEN),
        REPLICATE_VERSION,
        RetryPolicy(),
        create_wait_s=wait,
    )


async def first_audio_overhead(
    fake: FakeReplicate, wait: int, job: CloudJob, seconds: float
) -> float:
    """Seconds from create to decoded audio beyond the prediction's own `seconds`."""
    replicate = provider(fake, wait)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
        started = time.monotonic()
        await replicate.render(client, job)
        return time.monotonic() - started - seconds


async def cancel_delay(
    fake: FakeReplicate, wait: int, job: CloudJob, hang_up_after: float
) -> float:
    """Seconds from a hang-up `hang_up_after` s into a long prediction to its cancel arriving."""
    replicate = provider(fake, wait)
    async with httpx.AsyncClient(timeout=httpx.Timeout(60.0)) as client:
        before = set(fake.predictions)
        task = asyncio.create_task(replicate.render(client, job))
        await asyncio.sleep(hang_up_after)
        task.cancel()
        hung_up = time.monotonic()
        while True:
            mine = [p for key, p in fake.predictions.items() if key not in before]
            if mine and mine[0].canceled:
                delay = time.monotonic() - hung_up
                break
            await asyncio.sleep(0.01)
        await replicate.close()
        return delay


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--waits", type=int, nargs="+", default=[10, 4])
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory() as scratch:
        voices = Path(scratch)
        write_profile(voices, "alice", 'languages = ["en"]\n')
        voice = VoiceLibrary(voices, "en").find("alice")
        assert voice is not None and voice.voice is not None
        job = CloudJob("The washing machine is done.", "en", voice.voice, False)

        print(f"first audio beyond the prediction's own time, median of {arguments.runs} (ms)")
        print("prediction s | " + " | ".join(f"wait={w}" for w in arguments.waits))
        for seconds in PREDICTION_S:
            fakes = {wait: FakeReplicate().start() for wait in arguments.waits}
            for fake in fakes.values():
                fake.processing_s = seconds
            results = await asyncio.gather(
                *(
                    first_audio_overhead(fakes[wait], wait, job, seconds)
                    for wait in arguments.waits
                    for _ in range(arguments.runs)
                )
            )
            medians = [
                statistics.median(results[i * arguments.runs : (i + 1) * arguments.runs]) * 1000
                for i in range(len(arguments.waits))
            ]
            print(f"{seconds:12.0f} | " + " | ".join(f"{m:7.0f}" for m in medians))
            for fake in fakes.values():
                fake.stop()

        print("\nhang-up to cancel at the provider, 20 s prediction (ms)")
        print("hang-up at s | " + " | ".join(f"wait={w}" for w in arguments.waits))
        for hang_up_after in HANG_UP_AFTER_S:
            fakes = {wait: FakeReplicate().start() for wait in arguments.waits}
            for fake in fakes.values():
                fake.processing_s = 20.0
            delays = await asyncio.gather(
                *(cancel_delay(fakes[wait], wait, job, hang_up_after) for wait in arguments.waits)
            )
            print(f"{hang_up_after:12.1f} | " + " | ".join(f"{d * 1000:7.0f}" for d in delays))
            for fake in fakes.values():
                fake.stop()


if __name__ == "__main__":
    asyncio.run(main())
