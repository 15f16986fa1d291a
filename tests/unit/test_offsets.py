"""Positions (nexus_chat/offsets.py): the format a client sends back is parsed strictly, and a
process's progress stamps what it delivered, writer by writer."""
from __future__ import annotations

import asyncio
import datetime as dt

import pytest

from nexus_chat.offsets import MARGIN_S, MAX_WRITERS, RECENT_S, Position, Progress, WriterMark, utc_at


def test_a_position_round_trips_and_anything_else_is_none():
    position = Position(1764525061, {5: 77, 3: 1052})
    assert position.encode() == "v1764525061-3.1052-5.77"
    assert Position.parse(position.encode()) == position
    assert Position.parse("v0") == Position(0, {})
    assert Position.parse("v1-1.2-1.3-1.1") == Position(1, {1: 3})     # a writer twice: the later
    for bad in (None, 5, ["v1"], {"v": 1}, "", "v", "12", "0", "v1-", "v1-1", "v1-1.", "v1-0.5", "v1-01.5",
                "v-1", "V1", " v1", "v1 ", "v1\n", "v1-1.2.3", "v" + "9" * 11, "v1-" + "9" * 10 + ".1",
                "v1-1." + "9" * 20, f"v1-1.{2 ** 63}", "v1-1.1" * 2000, "v１",
                "v1" + "".join(f"-{w}.1" for w in range(1, 2 * MAX_WRITERS + 2))):
        assert Position.parse(bad) is None, bad


def test_join_keeps_what_either_received_and_owes_writer_by_writer():
    base = Position(1000, {1: 10, 2: 20})
    client = Position(2000, {1: 15, 3: 5})
    joined = base.join(client)
    assert joined == Position(2000, {1: 15, 2: 20, 3: 5})
    assert joined.advanced(2, 25).writers[2] == 25 and joined.advanced(2, 1).writers[2] == 20
    old, fresh = utc_at(2000 - MARGIN_S - 1), utc_at(2000 - MARGIN_S + 1)
    assert joined.owes(1, 16, old) and not joined.owes(1, 15, fresh)
    assert not joined.owes(4, 1, old) and joined.owes(4, 1, fresh)      # unnamed: by time
    assert not joined.owes(None, 99, old) and joined.owes(None, 99, fresh)
    assert joined.includes(1, 15) and not joined.includes(1, 16) and not joined.includes(4, 1)
    assert joined.lowest() == 5 and Position(1).lowest() == 0


def test_progress_stamps_recent_writers_and_waits_for_what_a_client_has():
    now = [10_000.0]
    progress = Progress(clock=lambda: now[0])
    progress.advance(1, 5)
    assert progress.stamp() == "v10000-1.5"
    progress.advance(2, 3)
    assert progress.stamp() == "v10000-1.5-2.3"
    progress.advance(1, 4)
    assert progress.stamp() == "v10000-1.5-2.3"             # never backwards
    now[0] += RECENT_S - 1
    progress.advance(2, 9)
    now[0] += 2                                             # writer 1 quiet for RECENT_S
    assert progress.stamp() == f"v{int(now[0])}-2.9"
    assert progress.snapshot().writers == {1: 5, 2: 9}       # the ceiling keeps every writer
    assert progress.covers(Position(0, {1: 5, 2: 9})) and not progress.covers(Position(0, {3: 1}))

    async def wait() -> tuple[bool, bool]:
        waiting = asyncio.ensure_future(progress.reached(Position(0, {3: 7}), 5))
        await asyncio.sleep(0)
        progress.advance(3, 6)
        await asyncio.sleep(0)
        assert not waiting.done()
        progress.advance(3, 7)
        reached = await waiting
        return reached, await progress.reached(Position(0, {4: 1}), 0.01)

    assert asyncio.run(wait()) == (True, False)


def test_progress_names_at_most_max_writers_and_marks_keep_their_time():
    now = [50_000.0]
    progress = Progress(clock=lambda: now[0])
    for writer in range(1, MAX_WRITERS + 6):
        now[0] += 1
        progress.advance(writer, writer * 10)
    named = Position.parse(progress.stamp())
    assert named is not None and sorted(named.writers) == list(range(6, MAX_WRITERS + 6))   # the latest
    progress.advance(999, 1, at=now[0] - RECENT_S - 5)        # a mark of a writer quiet for long
    assert 999 not in Position.parse(progress.stamp()).writers and progress.covers(Position(0, {999: 1}))


@pytest.mark.parametrize("seconds", [-5, 0, 9_999_999_999])
def test_utc_at_is_in_range_for_any_parsed_time(seconds):
    assert isinstance(utc_at(seconds), dt.datetime)


def test_unnamed_writers_owe_only_if_their_events_came_lately():
    now = [100_000.0]
    progress = Progress(clock=lambda: now[0])
    progress.advance(1, 10)
    floor = Position(int(now[0]), {1: 10})
    assert not progress.unnamed_may_owe(floor)
    progress.advance(2, 5, at=now[0] - 2 * MARGIN_S - 1)        # quiet since before the horizon
    assert not progress.unnamed_may_owe(floor)
    progress.advance(3, 7)
    assert progress.unnamed_may_owe(floor) and not progress.unnamed_may_owe(Position(floor.at, {1: 10, 3: 7}))


def test_a_writer_announced_at_its_start_is_named_and_owed_from_its_start():
    now = [100_000.0]
    progress = Progress(clock=lambda: now[0])
    progress.advance(1, 10)
    floor = progress.position()
    progress.started(4, 50)                  # a new process's writer: nothing of it up to 50
    assert progress.last(4) == 50 and progress.last(9) is None
    assert Position.parse(progress.stamp()).writers == {1: 10, 4: 50}
    progress.advance(4, 60)                  # its first event
    assert progress.unnamed_may_owe(floor) and progress.unnamed_starts(floor) == {4: 50}
    progress.advance(5, 70)                  # a writer whose start this process never heard
    assert progress.unnamed_starts(floor) is None


def test_a_writer_mark_reads_back_what_it_wrote_and_refuses_anything_else():
    for mark in (WriterMark(7, 42, 1_700_000_000, 40), WriterMark(7, 42, 1_700_000_000)):
        assert WriterMark.parse("7", mark.value()) == mark
    assert WriterMark.parse("7", "42.1700000000").start is None          # a previous version's mark
    for source, value in (("7", "42"), ("7", "42.1.2.3"), ("x", "42.1"), ("7", "-1.1"), ("7", "4².1"),
                          ("7", "42..1")):
        assert WriterMark.parse(source, value) is None
