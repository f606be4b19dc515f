"""`api.turns.answer_turn`: answers queued on one event loop run one per turn of the loop, so that what the
loop does at the end of a turn (uvloop writes the replies it was handed, then reads the sockets) happens
between two answers, not after all of them."""

from __future__ import annotations

import asyncio

import pytest
import uvloop

from api.turns import answer_turn


async def _three_answers_ready_at_once() -> list[str]:
    events: list[str] = []
    loop = asyncio.get_running_loop()

    async def answer(name: str) -> None:
        async with answer_turn():
            events.append(f"answer {name}")
            # What an answer hands on for the end of its turn (uvloop's queued write of its reply).
            loop.call_soon(events.append, f"after {name}")

    await asyncio.gather(*(answer(name) for name in "abc"))
    return events


@pytest.mark.parametrize("new_loop", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_answers_ready_in_one_turn_run_one_a_turn_in_arrival_order(new_loop) -> None:
    loop = new_loop()
    try:
        events = loop.run_until_complete(_three_answers_ready_at_once())
    finally:
        loop.close()
    # Without the turns the three answers ran back to back and every "after" came last.
    assert events == ["answer a", "after a", "answer b", "after b", "answer c", "after c"]


def test_a_failing_answer_passes_the_turn_on() -> None:
    async def run() -> list[str]:
        done: list[str] = []

        async def fails() -> None:
            async with answer_turn():
                raise ValueError("no answer")

        async def answers() -> None:
            async with answer_turn():
                done.append("answered")

        results = await asyncio.gather(fails(), answers(), return_exceptions=True)
        assert isinstance(results[0], ValueError)
        return done

    assert asyncio.run(run()) == ["answered"]
