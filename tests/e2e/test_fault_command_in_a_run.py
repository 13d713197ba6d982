"""A fault commanded while a real-time testbed runs: ``gridmesh fault --run OUT``."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.broker]


def test_a_meter_failed_at_run_time_costs_its_household_the_reports_after(tmp_path: Path) -> None:
    out = tmp_path / "run"
    lines = []
    with subprocess.Popen(
        [sys.executable, "-m", "gridmesh", "testbed", "--households", "3", "--slots", "6", "--seed", "5",
         "--start", "2016-06-06T10:00", "--clock", "realtime", "--speed", "900", "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    ) as testbed:
        assert testbed.stdout is not None
        try:
            for line in testbed.stdout:  # the run's own progress says when to act
                lines.append(line)
                if line.strip().startswith("slot     2/6"):
                    sent = subprocess.run([sys.executable, "-m", "gridmesh", "fault", "--run", str(out),
                                           "h002", "meter", "failure"], capture_output=True, text=True)
                    assert sent.returncode == 0, sent.stderr
                    assert "h002 meter -> failure" in sent.stdout
            assert testbed.wait(timeout=60) == 0, "".join(lines)
        finally:
            testbed.kill()
    assert any("fault   h002 meter -> failure" in line for line in lines), "".join(lines)
    with sqlite3.connect(out / "results.db") as db:
        reports = dict(db.execute("SELECT household, GROUP_CONCAT(metered_wh IS NULL, '') FROM "
                                  "(SELECT * FROM household_slots ORDER BY slot) GROUP BY household"))
    # Reported while the meter answered, never after it failed (and it never came back).
    assert reports["h002"].startswith("0") and reports["h002"].endswith("11") and "10" not in reports["h002"]
    assert reports["h001"] == reports["h003"] == "000000"
