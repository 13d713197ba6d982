"""Is a device's reading believable? A value no real device could show means the link
or the device is broken; such a reading is refused (and logged), never used.

Pure: takes a device kind and its decoded values (gridmesh units), returns the problem
or "".
"""

from __future__ import annotations

MAX_HOUSEHOLD_W = 1_000_000  # 1 MW: far above any household connection
NAMEPLATE_MARGIN_PCT = 120  # inverters briefly exceed their rating; more is a fault


def reading_problem(kind: str, values: dict[str, int]) -> str:
    """Why ``values`` of a ``kind`` device cannot be right, or "" if they can."""
    counters = [name for name in values if name.endswith("_wh") and values[name] < 0]
    if counters:
        return f"negative energy: {', '.join(f'{n}={values[n]}' for n in counters)}"
    if kind == "meter" and abs(values["power_w"]) > MAX_HOUSEHOLD_W:
        return f"power_w={values['power_w']} is beyond any household connection"
    if kind == "inverter":
        rated, pv = values["rated_power_w"], values["pv_power_w"]
        if rated > 0 and pv > rated * NAMEPLATE_MARGIN_PCT // 100:
            return f"pv_power_w={pv} is above the nameplate {rated} W"
        if pv < -rated // 10:
            return f"pv_power_w={pv} is negative"
    if kind == "battery":
        if not 0 <= values["soc_pct"] <= 100:
            return f"soc_pct={values['soc_pct']} is outside 0..100"
        if values["stored_wh"] > values["capacity_wh"]:
            return f"stored_wh={values['stored_wh']} exceeds capacity_wh={values['capacity_wh']}"
        limit = max(values["max_charge_w"], values["max_discharge_w"])
        if abs(values["power_w"]) > limit * NAMEPLATE_MARGIN_PCT // 100:
            return f"power_w={values['power_w']} is beyond the battery's limits ({limit} W)"
    return ""
