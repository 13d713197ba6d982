"""What a drill did and what it checked: :class:`DrillReport`, printed and kept as
``RUN/drill.json``.

Each :class:`Check` names what was checked, its outcome and the evidence (counts, or the
first thing found wrong). ``skipped`` means the run did not exercise it (say, a battery
that was never under the agent's control), and says why. A drill passes when no check
failed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

REPORT_FILE = "drill.json"
Outcome = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class Check:
    name: str
    outcome: Outcome
    detail: str

    @classmethod
    def of(cls, name: str, passed: bool, detail: str) -> Check:
        return cls(name, "passed" if passed else "failed", detail)


@dataclass
class DrillReport:
    drill: str
    description: str
    run: str  # the run folder
    events: list[str] = field(default_factory=list)  # what the drill did, in order
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(check.outcome != "failed" for check in self.checks)

    def lines(self) -> list[str]:
        failed = sum(c.outcome == "failed" for c in self.checks)
        verdict = "passed" if self.passed else f"FAILED ({failed} of {len(self.checks)} checks)"
        return [
            f"drill {self.drill}: {self.description}",
            *(f"  {event}" for event in self.events),
            *(f"{check.outcome:>7}  {check.name}: {check.detail}" for check in self.checks),
            f"drill {self.drill} {verdict}; report in {self.run}/{REPORT_FILE}",
        ]

    def as_dict(self) -> dict[str, Any]:
        return {"drill": self.drill, "description": self.description, "run": self.run,
                "passed": self.passed, "events": self.events,
                "checks": [{"name": c.name, "outcome": c.outcome, "detail": c.detail} for c in self.checks]}

    def write(self, out: Path) -> None:
        (out / REPORT_FILE).write_text(json.dumps(self.as_dict(), indent=2) + "\n")
