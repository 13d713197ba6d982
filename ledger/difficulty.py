"""How hard each block's proof of work must be. Pure.

With ``ledger.target_mine_ms`` 0 every block needs ``ledger.difficulty_bits``. Otherwise
the difficulty retargets every ``retarget_every`` blocks towards blocks that take
``target_mine_ms`` to mine (well under a slot): each header records how long mining the
block before it took (``prev_mine_ms``), and at a retarget the mean of the window's
records sets the change, ``round(log2(target / mean))`` bits (a bit doubles the expected
work), at most two bits either way, kept within the community's minimum and maximum.
Anyone holding the headers can recompute every block's requirement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from broker.community import LedgerRules
from broker.messages import BlockHeader

MAX_STEP_BITS = 2


def window_size(rules: LedgerRules) -> int:
    """How many headers before a block its requirement depends on."""
    return rules.retarget_every if rules.target_mine_ms else 1


def required_bits(rules: LedgerRules, before: Sequence[BlockHeader], height: int) -> int:
    """The difficulty block ``height`` must meet, given the headers before it (the last
    :func:`window_size` of them at least, most recent last)."""
    if rules.target_mine_ms == 0 or height <= 1 or not before:
        return rules.difficulty_bits
    previous = before[-1]
    current = previous.difficulty_bits if previous.height > 0 else rules.difficulty_bits
    every = rules.retarget_every
    if height <= every or (height - 1) % every:
        return current
    window = [h for h in before[-every:] if h.height > 0]
    mean_ms = max(sum(h.prev_mine_ms for h in window) / max(len(window), 1), 0.01)
    step = round(math.log2(rules.target_mine_ms / mean_ms))
    step = max(-MAX_STEP_BITS, min(MAX_STEP_BITS, step))
    return max(rules.min_difficulty_bits, min(rules.max_difficulty_bits, current + step))
