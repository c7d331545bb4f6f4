"""Admission to an engine (`core/admission.py`), in memory: turns in arrival order, and a
queue bounded by `--max-waiting` that refuses at once instead of keeping a segment waiting."""

import asyncio

import pytest

from wyoming_xtts.core.admission import Admission
from wyoming_xtts.core.errors import ErrorCode, SpeechError


async def hold(admission: Admission, name: str, order: list[str], release: asyncio.Event) -> None:
    async with admission.slot():
        order.append(name)
        await release.wait()


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_segments_get_their_slots_in_the_order_they_arrived() -> None:
    admission = Admission(1)
    order: list[str] = []
    release = asyncio.Event()
    tasks = []
    for name in "abcd":
        tasks.append(asyncio.create_task(hold(admission, name, order, release)))
        await settle()
    assert order == ["a"] and admission.waiting == 3

    release.set()
    await asyncio.gather(*tasks)

    assert order == ["a", "b", "c", "d"] and admission.waiting == 0


async def test_a_segment_finding_the_queue_full_is_refused_at_once_with_engine_busy() -> None:
    admission = Admission(2, max_waiting=1, engine="local")
    order: list[str] = []
    release = asyncio.Event()
    tasks = [asyncio.create_task(hold(admission, name, order, release)) for name in "abc"]
    await settle()

    with pytest.raises(SpeechError) as refused:
        async with admission.slot():
            pytest.fail("admitted past a full queue")

    assert refused.value.code is ErrorCode.ENGINE_BUSY
    assert refused.value.message == (
        "local is busy: it is speaking 2 segment(s) at once with 1 more waiting (--max-waiting 1)."
    )
    release.set()
    await asyncio.gather(*tasks)
    assert order == ["a", "b", "c"]


async def test_no_waiting_allowed_still_admits_while_a_slot_is_free() -> None:
    admission = Admission(1, max_waiting=0)
    async with admission.slot():
        with pytest.raises(SpeechError):
            async with admission.slot():
                pass
    async with admission.slot():
        assert admission.waiting == 0


async def test_a_segment_given_up_while_waiting_leaves_the_queue() -> None:
    admission = Admission(1, max_waiting=1)
    release = asyncio.Event()
    holder = asyncio.create_task(hold(admission, "a", [], release))
    waiter = asyncio.create_task(hold(admission, "b", [], release))
    await settle()
    assert admission.waiting == 1

    waiter.cancel()
    await asyncio.gather(waiter, return_exceptions=True)

    assert admission.waiting == 0
    queued = asyncio.create_task(hold(admission, "c", [], release))  # not refused: room again
    await settle()
    assert admission.waiting == 1
    release.set()
    await asyncio.gather(holder, queued)
