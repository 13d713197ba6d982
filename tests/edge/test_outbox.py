"""The agent's outbox on a real SQLite file: what is written waits, in order, until it is
confirmed, survives the process that wrote it, stays inside its bounds, and a file that
is not an outbox is refused naming it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from edge.outbox import Entry, Outbox, OutboxError


def entry(ref: str, slot: int = 100, created_s: int = 90_000, kind: str = "order") -> Entry:
    return Entry(ref, kind, f"gm/v1/demo/dev/h001/{kind}", f"payload of {ref}".encode(), slot, created_s)


def test_what_is_written_waits_oldest_first_until_confirmed(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "h001.outbox.db")
    box.put([entry("h001:100:report", kind="report"), entry("h001:101:0")], now_s=90_000)
    box.put([entry("h001:101:report", slot=101, kind="report")], now_s=90_900)
    assert [e.ref for e in box.waiting()] == ["h001:100:report", "h001:101:0", "h001:101:report"]
    assert [e.ref for e in box.waiting("report")] == ["h001:100:report", "h001:101:report"]
    assert box.confirm("h001:101:0") and not box.confirm("h001:101:0")
    assert [e.ref for e in box.waiting()] == ["h001:100:report", "h001:101:report"]
    assert box.waiting()[0] == entry("h001:100:report", kind="report")  # byte for byte
    assert box.counts["outbox_confirmed"] == 1


def test_a_ref_written_again_keeps_its_place_and_first_payload(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.db")
    box.put([entry("a"), entry("b")], now_s=90_000)
    box.put([Entry("a", "order", "t", b"other", 7, 95_000)], now_s=95_000)
    assert [(e.ref, e.payload) for e in box.waiting()] == [("a", b"payload of a"), ("b", b"payload of b")]


WRITER = """
import sys
from pathlib import Path
from edge.outbox import Entry, Outbox
box = Outbox(Path(sys.argv[1]))
box.put([Entry("h001:7:report", "report", "t", b"r", 7, 100),
         Entry("h001:8:0", "order", "t", b"o", 8, 100)], 100)
box.confirm("h001:8:0")
print("written", flush=True)
import os, signal
os.kill(os.getpid(), signal.SIGKILL)  # no close, no clean exit
"""


def test_what_was_written_survives_the_writer_being_killed(tmp_path: Path) -> None:
    path = tmp_path / "state" / "h001.outbox.db"
    done = subprocess.run([sys.executable, "-c", WRITER, str(path)], capture_output=True, text=True,
                          timeout=30, check=False)
    assert done.stdout == "written\n" and done.returncode == -9
    assert [(e.ref, e.payload) for e in Outbox(path).waiting()] == [("h001:7:report", b"r")]


def test_the_outbox_keeps_to_its_age_and_count_and_counts_what_it_drops(tmp_path: Path) -> None:
    counts: Counter[str] = Counter()
    box = Outbox(tmp_path / "o.db", counts, max_age_s=3600, max_messages=3)
    box.put([entry("old", created_s=10_000), entry("a", created_s=12_000)], now_s=12_000)
    box.put([entry("b", created_s=14_000)], now_s=14_000)  # "old" is now more than an hour old
    assert [e.ref for e in box.waiting()] == ["a", "b"]
    box.put([entry(r, created_s=14_100) for r in ("c", "d", "e")], now_s=14_100)
    assert [e.ref for e in box.waiting()] == ["c", "d", "e"]  # the newest three
    assert len(box) == 3
    assert (counts["outbox_dropped_age"], counts["outbox_dropped_full"]) == (1, 2)


def test_a_file_that_is_not_an_outbox_is_refused_naming_it(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is no database at all, not even close" * 100)
    with pytest.raises(OutboxError, match=f"{garbage}: not a gridmesh outbox"):
        Outbox(garbage)
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as conn:
        conn.execute("CREATE TABLE outbox (id INTEGER)")  # another program's database
    with pytest.raises(OutboxError, match=f"{other}: not a gridmesh outbox .*move it away"):
        Outbox(other)
    assert other.read_bytes()[:16] == b"SQLite format 3\x00"  # left as it was
    with sqlite3.connect(other) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("outbox",)]


def test_an_outbox_where_no_file_can_be_made_is_refused_naming_it(tmp_path: Path) -> None:
    blocker = tmp_path / "state"
    blocker.write_text("a file where the state directory should be")
    with pytest.raises(OutboxError, match=f"{blocker / 'o.db'}: cannot open the outbox"):
        Outbox(blocker / "o.db")
