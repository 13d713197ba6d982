"""What the ONNX forecasters see: features built from a household's slot history. Pure
(numpy only), shared by training and the agent, so the two cannot drift apart.

A model predicts the ``HORIZON`` slots that follow a window of ``LAGS`` metered slots:

- the window's values divided by the window's scale (load: its mean plus 1 Wh; PV: the
  system's peak energy per slot), so one model serves households of any size;
- the time of day of the first predicted slot (sine and cosine) and whether it falls on
  a weekend;
- for PV, the clear-sky shape of the predicted slots (the sine of the sun's elevation at
  the feeder's latitude, 0 at night), which carries the season and the day's arc.

Its output times the scale is the forecast in Wh per slot.
"""

from __future__ import annotations

import datetime as dt
import functools
import math

import numpy as np
import numpy.typing as npt

LAGS = 96
HORIZON = 96
SLOT_S = 900
LATITUDE_DEG = 52.3  # the SimBench feeders are German
LONGITUDE_DEG = 10.5
FEATURES = {"load": LAGS + 3, "pv": LAGS + 3 + HORIZON}
FloatArray = npt.NDArray[np.float32]


def calendar(first_slot: int) -> list[float]:
    start = dt.datetime.fromtimestamp(first_slot * SLOT_S, dt.UTC)
    angle = 2 * math.pi * (start.hour * 3600 + start.minute * 60) / 86_400
    return [math.sin(angle), math.cos(angle), 1.0 if start.weekday() >= 5 else 0.0]


@functools.lru_cache(maxsize=256)  # every agent of a process asks for the same slots
def clear_sky(first_slot: int, slots: int = HORIZON) -> tuple[float, ...]:
    """The sine of the sun's elevation at the middle of each slot (0 below the horizon)."""
    return tuple(_elevation(slot) for slot in range(first_slot, first_slot + slots))


@functools.lru_cache(maxsize=4096)  # consecutive windows share all but one slot
def _elevation(slot: int) -> float:
    t = dt.datetime.fromtimestamp(slot * SLOT_S + SLOT_S // 2, dt.UTC)
    day = t.timetuple().tm_yday
    declination = math.radians(23.44) * math.sin(2 * math.pi * (284 + day) / 365)
    solar_hours = t.hour + t.minute / 60 + LONGITUDE_DEG / 15
    hour_angle = math.radians(15 * (solar_hours - 12))
    lat = math.radians(LATITUDE_DEG)
    elevation = (math.sin(lat) * math.sin(declination)
                 + math.cos(lat) * math.cos(declination) * math.cos(hour_angle))
    return max(0.0, elevation)


def scale_of(kind: str, window: FloatArray, peak_wh_per_slot: float | None) -> float:
    if kind == "pv":
        return max(float(peak_wh_per_slot or 0.0), 1.0)
    return float(window.mean()) + 1.0


def features(kind: str, window: FloatArray, first_slot: int, peak_wh_per_slot: float | None = None
             ) -> tuple[FloatArray, float]:
    """The model input for the ``HORIZON`` slots from ``first_slot`` on, after ``window``
    (the ``LAGS`` slots just before it), and the scale that turns outputs into Wh."""
    if window.shape != (LAGS,):
        raise ValueError(f"the window must hold {LAGS} slots, holds {window.shape[0]}")
    scale = scale_of(kind, window, peak_wh_per_slot)
    parts = [window / scale, np.asarray(calendar(first_slot), dtype=np.float32)]
    if kind == "pv":
        parts.append(np.asarray(clear_sky(first_slot), dtype=np.float32))
    return np.concatenate(parts).astype(np.float32), scale
