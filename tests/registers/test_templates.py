"""Every bundled device template loads and checks itself; bad templates name file and key."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from edge.registers.codec import read_plan
from edge.registers.template import DEVICES_DIR, REQUIRED_POINTS, all_templates, load_template, unit_exponent
from gridmesh.config import ConfigError

BUNDLED = sorted(p.stem for p in DEVICES_DIR.glob("*.yaml"))


def test_the_gridmesh_devices_are_bundled() -> None:
    assert {"gridmesh-meter", "gridmesh-inverter", "gridmesh-battery"} <= set(BUNDLED)
    assert [t.name for t in all_templates()] == BUNDLED


@pytest.mark.parametrize("name", BUNDLED)
def test_every_template_loads_and_reads_in_few_requests(name: str) -> None:
    template = load_template(name)
    assert template.name == name
    for point_name in REQUIRED_POINTS[template.kind]:
        assert template.point(point_name).name == point_name
    plan = read_plan(template)
    covered = {(b.table, a) for b in plan for a in range(b.address, b.end)}
    for point in template.points:
        if point.const is None:  # constants (SunSpec markers, model ids) are not read
            assert {(point.table, a) for a in range(point.address, point.end)} <= covered
    assert all(1 <= b.count <= 125 for b in plan)
    runs = 0  # runs of back-to-back points: never more reads than these
    for table in ("input", "holding"):
        points = [p for p in template.table_points(table) if p.const is None]
        runs += sum(1 for i, p in enumerate(points) if i == 0 or p.address != points[i - 1].end)
    assert len(plan) <= runs


def test_the_signs_and_write_limits_of_the_gridmesh_devices() -> None:
    meter = load_template("gridmesh-meter")
    assert meter.point("power_w").type == "int32" and meter.point("power_w").sign == 1
    battery = load_template("gridmesh-battery")
    setpoint = battery.point("setpoint_w")
    assert (setpoint.table, setpoint.access, setpoint.type) == ("holding", "rw", "int32")
    limit = load_template("gridmesh-inverter").point("export_limit_pct")
    assert (limit.access, limit.min, limit.max) == ("rw", 0, 100)


def test_the_readme_documents_the_unit_ids() -> None:
    readme = (DEVICES_DIR / "README.md").read_text()
    for name, unit in (("gridmesh-meter", 1), ("gridmesh-inverter", 2), ("gridmesh-battery", 3)):
        assert f"| `{name}` |" in readme and f"## {name} (unit {unit})" in readme


def test_a_template_loads_by_path_and_unknown_names_list_the_bundled_ones(tmp_path: Path) -> None:
    assert load_template(DEVICES_DIR / "gridmesh-meter.yaml").name == "gridmesh-meter"
    with pytest.raises(ConfigError, match=r"no such device template .*gridmesh-meter"):
        load_template("no-such-device")
    with pytest.raises(KeyError, match="gridmesh-meter has no point 'soc_pct'"):
        load_template("gridmesh-meter").point("soc_pct")


METER = """name: my-meter
kind: meter
description: test
points:
  - {name: power_w, table: input, address: 0, type: int32, unit: W}
  - {name: import_wh, table: input, address: 2, type: uint32, unit: Wh}
"""
EXPORT = "  - {name: export_wh, table: input, address: 4, type: uint32, unit: Wh}\n"


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (METER + EXPORT.replace("type:", "typ:"), "points[2].typ", "unknown key"),
        (METER + EXPORT.replace("uint32", "uint24"), "points[2].type", "must be one of"),
        (METER + EXPORT.replace("address: 4", "address: 3"), "points",
         "export_wh (input 3) overlaps import_wh"),
        (METER + EXPORT.replace("export_wh", "import_wh"), "points[2].name", "duplicate point name"),
        (METER + EXPORT.replace("unit: Wh", "unit: W"), "points[2]", "needs unit Wh or kWh"),
        (METER + EXPORT + "  - {name: status, table: input, address: 6, type: uint16, unit: W}\n",
         "points[3]", "no unit suffix"),
        (METER + EXPORT.replace("unit: Wh}", "unit: Wh, access: rw}"), "points[2]",
         "input registers are read-only"),
        (METER, "points", "a meter needs export_wh"),
        (METER.replace("my-meter", "other") + EXPORT, "name", "must match the file name"),
        (METER + EXPORT.replace("address: 4", "address: -1"), "points[2].address", "must be >= 0"),
        (METER + EXPORT.replace("unit: Wh}", "unit: Wh, scale_factor: nope}"), "points[2].scale_factor",
         "no point named 'nope'"),
        (METER.replace("kind: meter", "kind: toaster") + EXPORT, "kind", "must be one of"),
        (METER + EXPORT + "  - {name: status, table: input, address: 130, type: int16, unit: ''}\n"
         + "  - {name: late_w, table: input, address: 131, type: uint16, unit: W, scale_factor: status}\n"
         + "  - {name: first, table: input, address: 6, type: int16, unit: ''}\n"
         + "  - {name: filler_w, table: input, address: 7, type: uint16, unit: W, scale_factor: first}\n",
         "points", None),
    ],
)
def test_a_bad_template_names_its_file_and_key(
    tmp_path: Path, text: str, key: str, problem: str | None
) -> None:
    path = tmp_path / "my-meter.yaml"
    path.write_text(text)
    if problem is None:  # a valid template with two separate reads and scale factors
        template = load_template(path)
        assert [b.address for b in read_plan(template)] == [0, 130]
        return
    with pytest.raises(ConfigError) as info:
        load_template(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {key}"), message
    assert problem in message


def test_a_scale_factor_split_from_its_point_is_refused(tmp_path: Path) -> None:
    points = "".join(
        f"  - {{name: r{i}, table: input, address: {10 + i}, type: uint16, unit: ''}}\n" for i in range(125)
    )
    path = tmp_path / "big.yaml"
    path.write_text(METER.replace("my-meter", "big") + EXPORT + points
                    + "  - {name: sf, table: input, address: 9, type: int16, unit: ''}\n"
                    + "  - {name: far_w, table: input, address: 135, type: int16, unit: W, "
                    "scale_factor: sf}\n")
    with pytest.raises(ConfigError, match=r"big.yaml: points: far_w and its scale factor sf do not fit"):
        load_template(path)


@pytest.mark.parametrize(("name", "unit", "exponent"), [
    ("voltage_l1_mv", "V", 3), ("current_l2_ma", "A", 3), ("frequency_mhz", "Hz", 3),
    ("import_wh", "kWh", 3), ("power_w", "W", 0)])
def test_electrical_units_convert_to_integer_milli_units(name: str, unit: str, exponent: int) -> None:
    assert unit_exponent(name, unit) == exponent


def test_a_voltage_point_in_the_wrong_unit_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bad-meter.yaml"
    path.write_text(
        "name: bad-meter\nkind: meter\ndescription: x\npoints:\n"
        "  - {name: voltage_l1_mv, table: input, address: 0, type: float32, unit: A}\n"
        "  - {name: power_w, table: input, address: 2, type: float32, unit: W}\n"
        "  - {name: import_wh, table: input, address: 4, type: float32, unit: kWh}\n"
        "  - {name: export_wh, table: input, address: 6, type: float32, unit: kWh}\n")
    expected = r"bad-meter\.yaml: points\[0\]: unit: .*'voltage_l1_mv' needs unit V"
    with pytest.raises(ConfigError, match=expected):
        load_template(path)


def write_inverter(tmp_path: Path, extra: str, read_gap: int = 0) -> Path:
    path = tmp_path / "odd-inverter.yaml"
    path.write_text(
        f"name: odd-inverter\nkind: inverter\ndescription: x\nread_gap: {read_gap}\npoints:\n"
        "  - {name: pv_power_w, table: holding, address: 10, type: int16, unit: W}\n"
        "  - {name: pv_energy_wh, table: holding, address: 20, type: uint32, unit: Wh}\n"
        "  - {name: rated_power_w, table: holding, address: 22, type: uint16, unit: W}\n" + extra)
    return path


@pytest.mark.parametrize(("extra", "problem"), [
    ("  - {name: marker, table: holding, address: 0, type: uint16, unit: '', const: 70000}\n",
     "points[3]: const: 70000 does not fit a uint16"),
    ("  - {name: marker, table: holding, address: 0, type: float32, unit: '', const: 1}\n",
     "points[3]: const: only read-only integer points can be constant"),
])
def test_an_impossible_constant_is_refused(tmp_path: Path, extra: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(f"odd-inverter.yaml: {problem}")):
        load_template(write_inverter(tmp_path, extra))


def test_reads_span_small_gaps_and_skip_constants(tmp_path: Path) -> None:
    marker = "  - {name: marker, table: holding, address: 0, type: uint32, unit: '', const: 1400204883}\n"
    apart = read_plan(load_template(write_inverter(tmp_path, marker)))
    assert [(b.address, b.count) for b in apart] == [(10, 1), (20, 3)]
    (tmp_path / "gap").mkdir()
    together = read_plan(load_template(write_inverter(tmp_path / "gap", marker, read_gap=9)))
    assert [(b.address, b.count) for b in together] == [(10, 13)]
