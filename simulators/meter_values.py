"""What a three-phase meter shows besides net power and energy, from the physics.

The household physics knows net power only; a meter such as the Eastron SDM630 also
shows voltage, current and power per phase and the grid frequency. The simulated
meter splits the net power evenly over three phases at nominal voltage and frequency,
so its per-phase registers are consistent with its total. Pure: integers in mV, mA,
mHz and W.
"""

from __future__ import annotations

from broker.units import split_evenly

NOMINAL_MV = 230_000
NOMINAL_MHZ = 50_000
PHASES = ("l1", "l2", "l3")


def three_phase_values(power_w: int) -> dict[str, int]:
    """Per-phase voltage, current and power (summing exactly to ``power_w``) and frequency."""
    powers = split_evenly(power_w, (1, 1, 1))
    values: dict[str, int] = {"frequency_mhz": NOMINAL_MHZ}
    for phase, phase_w in zip(PHASES, powers, strict=True):
        values[f"voltage_{phase}_mv"] = NOMINAL_MV
        values[f"current_{phase}_ma"] = abs(phase_w) * 1_000_000 // NOMINAL_MV
        values[f"power_{phase}_w"] = phase_w
    return values
