"""The process's one timer for heartbeats and token expiry (app/events/ticker.py):
ticks are driven by hand here, so what is checked is where each socket is
filed, not how the clock runs."""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter

from app.events.ticker import Ticker


class FakeSocket:
    def __init__(self) -> None:
        self.beat_slot = 0
        self.expiry_tick = 0
        self.beats: list[str] = []
        self.expired = 0

    def beat(self, text: str) -> None:
        self.beats.append(text)

    def expire(self) -> None:
        self.expired += 1


def _now_tick(ticker: Ticker) -> int:
    return math.floor(asyncio.get_running_loop().time() / ticker.period)


async def test_sockets_that_connect_together_beat_apart() -> None:
    """A reconnect storm: 2,500 sockets filed in the same instant get their
    heartbeats spread over the period, not in one wave."""
    ticker = Ticker(heartbeat_seconds=25.0)
    assert ticker.period == 1.0
    sockets = [FakeSocket() for _ in range(2500)]
    for socket in sockets:
        ticker.add(socket, expires_in_s=3600)
    start = _now_tick(ticker)
    per_tick = []
    for t in range(start + 1, start + 26):
        before = sum(len(s.beats) for s in sockets)
        ticker.tick(t - 1, t)
        per_tick.append(sum(len(s.beats) for s in sockets) - before)
    # One period: every socket beat exactly once.
    assert Counter(len(s.beats) for s in sockets) == {1: 2500}
    # 100 a tick on average; a wave would put them all in one.
    assert max(per_tick) <= 200, per_tick
    assert min(per_tick) >= 30, per_tick
    assert json.loads(sockets[0].beats[0])["type"] == "heartbeat"


async def test_a_stalled_loop_beats_each_socket_once_and_expires_what_ran_out() -> None:
    ticker = Ticker(heartbeat_seconds=5.0)
    short, long = FakeSocket(), FakeSocket()
    ticker.add(short, expires_in_s=2.0)
    ticker.add(long, expires_in_s=3600.0)
    start = _now_tick(ticker)
    ticker.tick(start, start + 40)  # 40 s late, eight periods
    assert (len(short.beats), len(long.beats)) == (1, 1)
    assert (short.expired, long.expired) == (1, 0)
    ticker.tick(start + 40, start + 41)
    assert short.expired == 1, "expired once"


async def test_a_token_ends_on_its_tick_not_before() -> None:
    ticker = Ticker(heartbeat_seconds=25.0)
    socket = FakeSocket()
    ticker.add(socket, expires_in_s=3.0)
    start = _now_tick(ticker)
    ticker.tick(start, start + 2)
    assert socket.expired == 0
    ticker.tick(start + 2, start + 4)
    assert socket.expired == 1


async def test_a_closed_socket_is_forgotten() -> None:
    ticker = Ticker(heartbeat_seconds=3.0)
    socket = FakeSocket()
    ticker.add(socket, expires_in_s=1.0)
    assert len(ticker) == 1
    ticker.discard(socket)
    assert len(ticker) == 0
    start = _now_tick(ticker)
    ticker.tick(start, start + 10)
    assert (socket.beats, socket.expired) == ([], 0)
