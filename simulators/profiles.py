"""Load and PV profiles from real data, as energy over any interval.

The bundled extract (``simulators/data/``, see SOURCE.md there) holds integer Wh per
15-minute step for sample weeks of a SimBench feeder: household load profiles
normalised to 1000 kWh per year and PV profiles to 1 kWp (1000 W). A household's energy
is the profile's energy times ``scale / 1000``, where ``scale`` is its annual load in
kWh or its PV peak power in W.

Energy inside a step is spread evenly over the step. :meth:`ProfileSet.energy_wh` is a
difference of one rounded cumulative-energy curve, so consecutive sub-intervals always
add up exactly to the energy of the whole interval.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import itertools
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

DATA_DIR = Path(__file__).resolve().parent / "data"
BUNDLED_FEEDER = "1-LV-rural3--0-sw"
REFERENCE = 1000  # load: per 1000 kWh/year; PV: per 1000 W peak
PV_PREFIX = "PV"  # SimBench names its PV profiles PV1..PV8


class ProfileError(ValueError):
    """A profile that does not exist, or an interval the data does not cover."""


@dataclass(frozen=True)
class Segment:
    """Contiguous steps of one profile; ``cumulative[i]`` is the energy before step ``i``."""

    start_s: int
    step_s: int
    values: tuple[int, ...]
    cumulative: tuple[int, ...]

    @property
    def end_s(self) -> int:
        return self.start_s + self.step_s * len(self.values)

    def covers(self, start_s: int, end_s: int) -> bool:
        return self.start_s <= start_s <= end_s <= self.end_s

    def _area(self, t_s: int) -> int:
        """Reference energy from the segment's start to ``t_s``, in Wh x step_s."""
        index, into = divmod(t_s - self.start_s, self.step_s)
        if index == len(self.values):
            return self.cumulative[index] * self.step_s
        return self.cumulative[index] * self.step_s + self.values[index] * into

    def scaled_energy(self, t_s: int, scale: int) -> int:
        """Energy from the segment's start to ``t_s`` times ``scale / REFERENCE``, rounded half up."""
        denominator = self.step_s * REFERENCE
        return (2 * self._area(t_s) * scale + denominator) // (2 * denominator)


@dataclass(frozen=True)
class Profile:
    name: str
    kind: Literal["load", "pv"]
    segments: tuple[Segment, ...]


@dataclass(frozen=True)
class FeederHousehold:
    """One household of the source feeder."""

    name: str
    load_profile: str
    annual_kwh: int
    pv_peak_w: int
    pv_profile: str | None


def _utc(t_s: int) -> str:
    return dt.datetime.fromtimestamp(t_s, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _segments(times: list[int], values: list[int], step_s: int) -> tuple[Segment, ...]:
    segments: list[Segment] = []
    first = 0
    for i in range(1, len(times) + 1):
        if i == len(times) or times[i] != times[i - 1] + step_s:
            run = tuple(values[first:i])
            cumulative = [0]
            for value in run:
                cumulative.append(cumulative[-1] + value)
            segments.append(Segment(times[first], step_s, run, tuple(cumulative)))
            first = i
    return tuple(segments)


def read_profiles(path: Path, step_s: int = 900) -> dict[str, Profile]:
    """Profiles from a CSV with ``start_s``, ``start_utc`` and one integer-Wh column each."""
    with path.open(newline="") as fh:
        reader = csv.reader(fh)
        header = next(reader)
        if header[:2] != ["start_s", "start_utc"] or len(header) < 3:
            raise ProfileError(f"{path}: header must start with start_s,start_utc and name profiles")
        names = header[2:]
        times: list[int] = []
        columns: list[list[int]] = [[] for _ in names]
        for line_no, row in enumerate(reader, start=2):
            try:
                times.append(int(row[0]))
                for column, text in zip(columns, row[2:], strict=True):
                    value = int(text)
                    if value < 0:
                        raise ValueError("negative energy")
                    column.append(value)
            except (ValueError, IndexError) as exc:
                raise ProfileError(f"{path}: line {line_no}: {exc}") from None
    if any(b <= a for a, b in itertools.pairwise(times)):
        raise ProfileError(f"{path}: start_s must increase from row to row")
    return {
        name: Profile(name, "pv" if name.startswith(PV_PREFIX) else "load",
                      _segments(times, column, step_s))
        for name, column in zip(names, columns, strict=True)
    }


def read_feeder(path: Path) -> tuple[FeederHousehold, ...]:
    """The households listed in a ``feeder-<name>.csv``."""
    with path.open(newline="") as fh:
        rows = list(csv.DictReader(fh))
    try:
        return tuple(
            FeederHousehold(row["household"], row["load_profile"], int(row["annual_kwh"]),
                            int(row["pv_peak_w"]), row["pv_profile"] or None)
            for row in rows
        )
    except (KeyError, ValueError) as exc:
        raise ProfileError(f"{path}: {exc}") from None


class ProfileSet:
    """Named profiles and the feeder they come from."""

    def __init__(self, feeder: str, profiles: dict[str, Profile],
                 households: tuple[FeederHousehold, ...] = ()) -> None:
        self.feeder = feeder
        self.profiles = profiles
        self.households = households
        for household in households:
            for name in (household.load_profile, household.pv_profile):
                if name is not None and name not in profiles:
                    raise ProfileError(f"feeder {feeder}: {household.name} uses unknown profile {name!r}")

    @classmethod
    def load(cls, data_dir: Path, feeder: str) -> ProfileSet:
        profiles = read_profiles(data_dir / f"profiles-{feeder}.csv")
        households = read_feeder(data_dir / f"feeder-{feeder}.csv")
        return cls(feeder, profiles, households)

    @classmethod
    def load_bundled(cls, feeder: str = "") -> ProfileSet:
        """A feeder's extract shipped in ``simulators/data`` (default: the default feeder),
        read once per process; ValueError names the bundled feeders for an unknown one."""
        name = feeder or BUNDLED_FEEDER
        if name not in bundled_feeders():
            raise ValueError(f"no bundled feeder {name!r} (bundled: {', '.join(bundled_feeders())})")
        return _bundled(name)

    def names(self, kind: Literal["load", "pv"]) -> tuple[str, ...]:
        return tuple(sorted(n for n, p in self.profiles.items() if p.kind == kind))

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles))
            raise ProfileError(f"no profile {name!r} (known: {known})") from None

    def covered(self, name: str) -> tuple[tuple[int, int], ...]:
        """The ``(start_s, end_s)`` ranges a profile has data for."""
        return tuple((s.start_s, s.end_s) for s in self.profile(name).segments)

    def energy_wh(self, profile: str, start_s: int, end_s: int, scale: int) -> int:
        """Energy of ``profile`` from ``start_s`` to ``end_s`` for a household of ``scale``.

        ``scale`` is the annual load in kWh (load profiles) or the PV peak in W (PV
        profiles). ProfileError names the covered date ranges when the data does not
        hold the whole interval.
        """
        if end_s < start_s:
            raise ProfileError(f"{profile}: interval ends before it starts ({start_s} > {end_s})")
        if scale < 0:
            raise ProfileError(f"{profile}: scale must be >= 0, got {scale}")
        for segment in self.profile(profile).segments:
            if segment.covers(start_s, end_s):
                return segment.scaled_energy(end_s, scale) - segment.scaled_energy(start_s, scale)
        ranges = "; ".join(f"{_utc(a)} .. {_utc(b)}" for a, b in self.covered(profile))
        raise ProfileError(
            f"{profile}: no data for {_utc(start_s)} .. {_utc(end_s)} UTC; "
            f"the {self.feeder} extract covers {ranges} UTC"
        )


def bundled_feeders(data_dir: Path = DATA_DIR) -> tuple[str, ...]:
    """The SimBench feeders whose extract is in ``data_dir`` (default: the bundled ones
    in ``simulators/data``): those with both a feeder and a profiles file."""
    return tuple(sorted(p.name[len("feeder-"):-len(".csv")] for p in data_dir.glob("feeder-*.csv")
                        if (data_dir / f"profiles-{p.name[len('feeder-'):]}").is_file()))


@functools.cache
def _bundled(feeder: str) -> ProfileSet:
    return ProfileSet.load(DATA_DIR, feeder)
