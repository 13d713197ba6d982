"""The SunSpec model chain: where a device's models are, from its register words.

A SunSpec device holds "SunS" (0x5375 0x6E53) at a base address (40000, 0 or 50000),
then one model after another, each an id and a length L followed by L registers,
ended by id 0xFFFF. Pure: the reading is done by :mod:`edge.device_tools`.
"""

from __future__ import annotations

from dataclasses import dataclass

SUNS = (0x5375, 0x6E53)
BASE_ADDRESSES = (40000, 0, 50000)
END_ID = 0xFFFF
MAX_MODELS = 64


@dataclass(frozen=True)
class ModelHeader:
    address: int  # of the model's id register
    model_id: int
    length: int  # registers after the id and length

    @property
    def next_address(self) -> int:
        return self.address + 2 + self.length


def is_sunspec_marker(words: list[int]) -> bool:
    return tuple(words[:2]) == SUNS
