"""Why a submission was refused, as a short label for counting (metrics), from the reason
text the intake gives the member. Pure; ``other`` for a reason no pattern knows, which a
test keeps from happening to the intake's own reasons."""

from __future__ import annotations

import re

# (label, pattern), first match wins; the patterns follow coordinator/intake.py,
# coordinator/standing.py and coordinator/share_intake.py.
PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple((label, re.compile(pattern)) for label, pattern in (
    ("wrong_topic", r"^device .* does not match the topic"),
    ("unknown_device", r"^unknown device"),
    ("bad_signature", r"^bad signature"),
    ("already_cleared", r"is already cleared$"),
    ("late", r"^late: "),
    ("too_far_ahead", r"slots ahead$"),
    ("excluded", r"^excluded until slot"),
    ("over_limit", r"exceeds the connection (import|export) limit"),
    ("one_order_per_slot", r"^one order per device and slot"),
    ("slot_not_ended", r"has not ended yet"),
    ("already_settled", r"is already settled$"),
    ("round_closed", r"^round \d+ is (closed|not open yet)"),
    ("federated_off", r"^federated forecasting is off"),
    ("bad_share", r"^(xtx|xty|no \w+ model|a storage member|a \w+ share is|\d+ window)"),
))
OTHER = "other"
LABELS = (*(label for label, _ in PATTERNS), OTHER)


def reason_label(reason: str) -> str:
    for label, pattern in PATTERNS:
        if pattern.search(reason):
            return label
    return OTHER
