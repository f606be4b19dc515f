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


class _Turns:
    """Counts the loop's turns: a callback that runs once a turn and queues itself for the next."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop, self.count, self.running = loop, 0, True
        loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.count += 1
        if self.running:
            self.loop.call_soon(self._tick)


@pytest.mark.parametrize("new_loop", [asyncio.new_event_loop, uvloop.new_event_loop], ids=["asyncio", "uvloop"])
def test_answers_one_after_another_start_a_turn_apart(new_loop) -> None:
    """As the bench sends them (and a worker under load meets them): each answer arrives in the turn the one
    before it ended, and starts at the next turn, not the one after (an asyncio lock released at the next
    turn wakes its waiter only then)."""

    async def run() -> list[int]:
        turns = _Turns(asyncio.get_running_loop())
        started = []
        for _ in range(4):
            async with answer_turn():
                started.append(turns.count)
        turns.running = False
        return started

    loop = new_loop()
    try:
        started = loop.run_until_complete(run())
    finally:
        loop.close()
    assert [b - a for a, b in zip(started, started[1:])] == [1, 1, 1]


@pytest.mark.parametrize("cancel", ["waiting", "handed the turn", "taking the next turn"])
def test_a_cancelled_answer_passes_the_turn_on(cancel: str) -> None:
    """An answer cancelled while it waits is passed over; one cancelled after the turn was handed to it, or
    after it took the next turn (it arrived after the answer before it had left), hands it on: the answer
    behind it still runs, at a turn of its own."""

    async def run() -> list[str]:
        loop = asyncio.get_running_loop()
        events: list[str] = []
        tasks: dict[str, asyncio.Task[None]] = {}

        async def answer(name: str) -> None:
            if name == "c" and cancel != "handed the turn":
                tasks["b"].cancel()  # b waits for the turn, or has taken the next one
            async with answer_turn():
                events.append(f"answer {name}")
                loop.call_soon(events.append, f"after {name}")
                if name == "a" and cancel != "taking the next turn":
                    await asyncio.sleep(0)  # b and c arrive while a holds the turn: they wait for it
            if name == "a" and cancel == "handed the turn":
                tasks["b"].cancel()

        for name in "abc":
            tasks[name] = loop.create_task(answer(name))
        results = await asyncio.gather(*tasks.values(), return_exceptions=True)
        assert isinstance(results[1], asyncio.CancelledError)
        return events

    assert asyncio.run(run()) == ["answer a", "after a", "answer c", "after c"]
