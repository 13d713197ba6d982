"""The run report on real runs: every testbed run writes report.html, ``gridmesh report``
writes it again or compares two runs, headless Chromium draws every chart from the page's
data with no script error, and bad run folders are named, with nothing written.

Two small runs for the whole module: A with tight feeder limits (limit events, curtailment)
and ``--compare``; B with another seed and one household fewer, for the comparison.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, ClassVar

import pytest

from gridmesh.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.broker]
START = "2016-06-06T10:00"  # late morning: PV surplus, so peers trade
TIGHT_LIMITS = "community:\n  grid: {import_limit_w: 400, export_limit_w: 400}\n"


@dataclass(frozen=True)
class Runs:
    a: Path
    b: Path


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Runs:
    root = tmp_path_factory.mktemp("report")
    config = root / "tight.yaml"
    config.write_text(TIGHT_LIMITS)
    a, b = root / "a", root / "b"
    assert main(["testbed", "--config", str(config), "--households", "6", "--slots", "8", "--seed", "11",
                 "--start", START, "--compare", "--out", str(a), "--json"]) == 0
    assert main(["testbed", "--households", "5", "--slots", "8", "--seed", "3", "--start", START,
                 "--out", str(b), "--json"]) == 0
    return Runs(a, b)


def embedded(page: Path) -> dict[str, Any]:
    found = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', page.read_text(),
                      re.S)
    assert found, f"{page} embeds no data"
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_every_run_writes_its_report_with_the_runs_shape_ledger_and_audit(runs: Runs) -> None:
    page = (runs.a / "report.html").read_text()
    summary = json.loads((runs.a / "summary.json").read_text())
    assert summary["head_hash"] and summary["head_hash"] in page
    assert "<dt>seed</dt><dd>11</dd>" in page
    assert "<dt>audit</dt><dd>passed, market and bills replayed</dd>" in page
    assert "import 0.4 kW, export 0.4 kW" in page  # the genesis block's feeder limits
    assert (runs.b / "report.html").is_file()
    assert "run the testbed with --compare" in (runs.b / "report.html").read_text()


def test_the_charts_data_is_the_runs_data(runs: Runs) -> None:
    charts = embedded(runs.a / "report.html")["charts"]
    db = runs.a / "results.db"
    slots = rows(db, "SELECT slot, feeder_import_wh, limit_violation FROM slots ORDER BY slot")
    flows = {s["name"]: s["values"] for s in charts["flows"]["series"]}
    assert flows["feeder import"] == [round(wh * 4 / 1000, 3) for _, wh, _ in slots]  # 15-min slots: kW
    violations = {index for index, (_, _, over) in enumerate(slots) if over}
    curtailed = {slot for (slot,) in rows(db, "SELECT slot FROM household_slots GROUP BY slot "
                                              "HAVING SUM(curtailed_wh) > 0")}
    marked = {m["index"] for m in charts["flows"]["markers"]}
    assert violations and curtailed
    assert violations <= marked
    assert {index for index, (slot, _, _) in enumerate(slots) if slot in curtailed} <= marked
    assert {h["value"] for h in charts["flows"]["hlines"]} == {0.4}  # both limits lie near the flows
    pairs = rows(db, "SELECT seller, buyer, SUM(energy_wh), COUNT(*) FROM trades GROUP BY seller, buyer")
    assert pairs and sorted((e["from"], e["to"], round(e["kwh"] * 1000), e["trades"])
                            for e in charts["network"]["edges"]) == sorted(pairs)
    households = rows(db, "SELECT household, savings_u FROM households ORDER BY household")
    assert charts["savings"]["categories"] == [h for h, _ in households]
    assert charts["savings"]["series"][0]["values"] == [s / 1e6 for _, s in households]
    batteries = [h for (h,) in rows(db, "SELECT household FROM households WHERE battery_wh > 0 "
                                        "ORDER BY household")]
    assert [s["name"] for s in charts["soc"]["series"]] == batteries
    compare = json.loads((runs.a / "compare.json").read_text())
    bills = [compare["scenarios"][key]["bill_u"] / 1e6 for key in "abcd"]
    assert charts["scenarios"]["series"][0]["values"] == bills
    valued = [compare["scenarios"][key]["valued_bill_u"] / 1e6 for key in "abcd"]
    assert charts["scenarios"]["series"][1]["values"] == valued


def test_gridmesh_report_writes_the_same_page_again(runs: Runs, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    again = tmp_path / "again.html"
    assert main(["report", str(runs.a), "--out", str(again)]) == 0
    assert f"wrote {again}" in capsys.readouterr().out
    assert again.read_text() == (runs.a / "report.html").read_text()


def test_two_runs_compared_say_what_differs(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "ab.html"
    assert main(["report", str(runs.a), str(runs.b), "--out", str(out)]) == 0
    page = out.read_text()
    for difference in ("households: A has 6, B 5", "seed: A 11, B 3", "feeder limits: A import 0.4 kW",
                       "households in one run only: h006 in A, none in B", "only A ran --compare"):
        assert difference in page
    charts = embedded(out)["charts"]
    assert charts["households"]["categories"] == ["h001", "h002", "h003", "h004", "h005"]
    bill_a, bill_b = (json.loads((run / "summary.json").read_text())["bill_u"] / 1e6
                      for run in (runs.a, runs.b))
    assert [s["values"][0] for s in charts["bills"]["series"]] == [bill_a, bill_b]
    assert len(charts["flows"]["series"]) == 6 and len(charts["flows"]["x"]) == 8
    assert "scenarios" not in charts


RESOURCE = re.compile(r"""(?:\b(?:src|href|action|poster|data)\s*=\s*["']?\s*(?:https?:)?//)|"""
                      r"""(?:url\(\s*["']?\s*(?:https?:)?//)|(?:@import)""", re.I)


def test_the_pages_reference_nothing_on_the_network(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "ab.html"
    assert main(["report", str(runs.a), str(runs.b), "--out", str(out)]) == 0
    for page in (runs.a / "report.html", out):
        text = page.read_text()
        assert not RESOURCE.search(text), RESOURCE.search(text)
        assert "<link" not in text and "<img" not in text and "<script src" not in text


# -- the pages in a real browser ---------------------------------------------------------------------

def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        if os.environ.get("CI"):
            pytest.fail("chromium is not installed but CI is set: .ci/run installs it")
        pytest.skip("chromium is not installed (apt install chromium)")
    return found


@dataclass
class Node:
    tag: str
    attrs: dict[str, str]
    figure: str | None  # the chart it is drawn in
    within: tuple[str, ...]  # its ancestors' ids
    text: list[str] = field(default_factory=list)


class Dom(HTMLParser):
    """Every element of a page with its attributes and the chart figure it lies in."""

    VOID: ClassVar[set[str]] = {"meta", "br", "hr", "img", "input", "link", "source", "wbr", "col", "area",
                                "base"}

    def __init__(self, page: str) -> None:
        super().__init__()
        self.nodes: list[Node] = []
        self.stack: list[Node] = []
        self.feed(page)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        parent = self.stack[-1] if self.stack else None
        figure = values.get("data-chart") if tag == "figure" else (parent.figure if parent else None)
        own_id = (parent.attrs["id"],) if parent and "id" in parent.attrs else ()
        within = () if parent is None else parent.within + own_id
        node = Node(tag, values, figure, within)
        self.nodes.append(node)
        if tag not in self.VOID:
            self.stack.append(node)

    def handle_endtag(self, tag: str) -> None:
        while self.stack:
            if self.stack.pop().tag == tag:
                break

    def handle_data(self, data: str) -> None:
        if self.stack:
            self.stack[-1].text.append(data)

    def find(self, tag: str, css_class: str = "", figure: str | None = None) -> list[Node]:
        return [n for n in self.nodes if n.tag == tag and (figure is None or n.figure == figure)
                and css_class in [*n.attrs.get("class", "").split(), ""]]


def rendered(page: Path) -> Dom:
    """The page's DOM after its scripts ran, from a headless Chromium with a profile of its own."""
    with tempfile.TemporaryDirectory() as profile:
        command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={profile}",
                   "--dump-dom", page.resolve().as_uri()]
        done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True)
    return Dom(done.stdout)


def vertices(d: str) -> int:
    return len(re.findall(r"[ML]", d))


def check_drawn(dom: Dom, charts: dict[str, dict[str, Any]]) -> None:
    reported = ["".join(n.text) for n in dom.find("li") if "script-errors" in n.within]
    assert reported == [], "the page reported script errors"
    body = dom.find("body")[0]
    assert body.attrs.get("data-charts-drawn") == str(len(charts))
    figures = {n.attrs["data-chart"]: n for n in dom.find("figure")}
    assert set(figures) == set(charts)
    for chart_id, chart in charts.items():
        assert figures[chart_id].attrs.get("data-drawn") == "yes", chart_id
        assert len(dom.find("svg", figure=chart_id)) == 1, chart_id
        if chart["kind"] == "lines":
            paths = dom.find("path", "series", chart_id)
            assert len(paths) == len(chart["series"]), chart_id
            for path, s in zip(paths, chart["series"], strict=True):
                points = sum(v is not None for v in s["values"]) * (2 if s["style"] == "step" else 1)
                assert vertices(path.attrs["d"]) == points, (chart_id, s["name"])
            assert len(dom.find("line", "marker", chart_id)) == len(chart["markers"])
            assert len(dom.find("g", "hline", chart_id)) == len(chart["hlines"])
        elif chart["kind"] == "bars":
            assert len(dom.find("rect", "bar", chart_id)) == sum(len(s["values"]) for s in chart["series"])
        else:
            assert len(dom.find("circle", "node", chart_id)) == len(chart["nodes"])
            assert len(dom.find("line", "edge", chart_id)) == len(chart["edges"])
        if chart["kind"] != "network":
            assert len(dom.find("button", "legend-item", chart_id)) == len(chart["series"])


def test_chromium_draws_every_chart_of_a_run(runs: Runs) -> None:
    charts = embedded(runs.a / "report.html")["charts"]
    assert set(charts) == {"flows", "prices", "soc", "network", "savings", "scenarios"}
    check_drawn(rendered(runs.a / "report.html"), charts)


def test_chromium_draws_every_chart_of_a_comparison(runs: Runs, tmp_path: Path) -> None:
    out = tmp_path / "ab.html"
    assert main(["report", str(runs.a), str(runs.b), "--out", str(out)]) == 0
    charts = embedded(out)["charts"]
    assert set(charts) == {"bills", "flows", "households"}
    check_drawn(rendered(out), charts)


POINT_AND_CLICK = """<script>
const figure = document.getElementById("chart-flows");
const overlay = figure.querySelector("rect.overlay"), box = overlay.getBoundingClientRect();
overlay.dispatchEvent(new MouseEvent("mousemove", { clientX: box.left + box.width * (SLOT + 0.5) / SLOTS,
                                                    clientY: box.top + 10, bubbles: true }));
figure.querySelector("button.legend-item").click();
const again = figure.querySelectorAll("button.legend-item")[1];
again.click();
again.click();
document.getElementById("chart-savings").querySelectorAll("button.legend-item")[1].click();
</script>"""


def test_pointing_at_a_slot_shows_its_values_and_a_legend_click_hides_a_series(
        runs: Runs, tmp_path: Path) -> None:
    charts = embedded(runs.a / "report.html")["charts"]
    flows, slot = charts["flows"], 3
    page = tmp_path / "pointed.html"
    script = POINT_AND_CLICK.replace("SLOTS", str(len(flows["x"]))).replace("SLOT", str(slot))
    page.write_text((runs.a / "report.html").read_text().replace("</body>", script + "</body>"))
    dom = rendered(page)
    tip = next(n for n in dom.find("div", "tooltip", "flows"))
    assert "hidden" not in tip.attrs
    shown = [" ".join(n.text) for n in dom.nodes if n.figure == "flows" and n.tag == "span" and n.text]
    load = flows["series"][0]["values"][slot]
    assert flows["x"][slot] in [" ".join(n.text) for n in dom.find("div", "tip-title", "flows")]
    loads = [float(text.split()[1]) for text in shown if text.startswith("load: ")]
    assert len(loads) == 1 and abs(loads[0] - load) <= 0.05 * max(abs(load), 1), shown  # as rounded to show
    groups = dom.find("g", "series-group", "flows")
    assert "hidden" in groups[0].attrs["class"] and "hidden" not in groups[1].attrs["class"]  # clicked twice
    buttons = dom.find("button", "legend-item", "flows")
    assert "off" in buttons[0].attrs["class"] and "off" not in buttons[1].attrs["class"]
    bars = dom.find("g", "series-group", "savings")
    assert "hidden" not in bars[0].attrs["class"] and "hidden" in bars[1].attrs["class"]
    assert "off" in dom.find("button", "legend-item", "savings")[1].attrs["class"]


def test_a_script_error_shows_in_the_page(runs: Runs, tmp_path: Path) -> None:
    broken = tmp_path / "broken.html"
    text = (runs.a / "report.html").read_text()
    broken.write_text(text.replace('"kind":"network"', '"kind":"sankey"', 1))
    dom = rendered(broken)
    errors = next(n for n in dom.nodes if n.attrs.get("id") == "script-errors")
    assert "hidden" not in errors.attrs
    assert ["".join(n.text) for n in dom.find("li") if "script-errors" in n.within] == [
        "network: no chart network"]
    drawn = {n.attrs["data-chart"]: n.attrs.get("data-drawn") for n in dom.find("figure")}
    assert drawn["network"] == "no" and drawn["flows"] == "yes"


# -- bad run folders ----------------------------------------------------------------------------------

def spoil_column(run: Path) -> None:
    with sqlite3.connect(run / "results.db") as conn:
        conn.execute("ALTER TABLE household_slots DROP COLUMN soc_end_pct")


def remove_ledger(run: Path) -> None:
    for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm"):
        (run / name).unlink(missing_ok=True)


def empty_ledger(run: Path) -> None:
    remove_ledger(run)
    (run / "ledger.db").write_bytes(b"")


BAD: list[tuple[str, Callable[[Path], object], str]] = [
    ("no marker", lambda p: (p / "run.json").unlink(), "no run.json; not a testbed run's output folder"),
    ("unfinished", lambda p: (p / "run.json").write_text('{"status": "running"}'), "the run did not finish"),
    ("other version", lambda p: (p / "run.json").write_text('{"status": "finished", "gridmesh": "0.0.9", '
                                                             '"results_format": 0}'),
     "written by gridmesh 0.0.9 in results format 0"),
    ("no results", lambda p: (p / "results.db").unlink(), "missing results.db"),
    ("old table", spoil_column, "results.db's table household_slots lacks the column(s) soc_end_pct"),
    ("no ledger", lambda p: remove_ledger(p), "missing ledger.db"),
    ("empty ledger", lambda p: empty_ledger(p), "holds no ledger"),
]


@pytest.mark.parametrize(("spoil", "problem"), [(s, p) for _, s, p in BAD], ids=[n for n, _, _ in BAD])
def test_a_bad_run_folder_is_named_and_nothing_is_written(
        runs: Runs, tmp_path: Path, capsys: pytest.CaptureFixture[str], spoil: Callable[[Path], object],
        problem: str) -> None:
    run = tmp_path / "run"
    shutil.copytree(runs.a, run, ignore=shutil.ignore_patterns("logs", "state", "config", "broker", "agents"))
    spoil(run)
    out = tmp_path / "out.html"
    assert main(["report", str(run), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gridmesh report: run folder {run}: ") and problem in err and err.count("\n") == 1
    assert not out.exists() and not list(tmp_path.glob(".out.html*"))
    assert main(["report", str(runs.b), str(run), "--out", str(out)]) == 2  # as the second run too
    assert problem in capsys.readouterr().err and not out.exists()


def test_arguments_that_make_no_report_are_refused(runs: Runs, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(runs.a), str(runs.b), str(runs.a)]) == 2
    assert "3 run folders given: name one, or two to compare them" in capsys.readouterr().err
    assert main(["report", str(runs.a), "--out", str(tmp_path)]) == 2
    assert f"--out {tmp_path}: is a folder" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().err
