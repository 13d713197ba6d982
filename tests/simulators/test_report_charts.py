"""The report's pure parts: limit events, chart data and the page's embedding of it."""

from __future__ import annotations

import json
from pathlib import Path

from broker.community import PricePoint, Tariff, TouPeriod
from simulators.report.charts import flows_chart, limit_events, price_chart, trade_network
from simulators.report.page import embedded_json, write_page
from simulators.report.run_page import tariff_text

SLOT_S = 900


def slot(index: int, imported: int = 0, exported: int = 0, price: int | None = None) -> dict[str, object]:
    return {"slot": 100 + index, "start_s": (100 + index) * SLOT_S, "feeder_import_wh": imported,
            "feeder_export_wh": exported, "p2p_wh": 0, "price_u_per_kwh": price}


def household_slot(index: int, curtailed: int = 0) -> dict[str, object]:
    return {"household": "h001", "slot": 100 + index, "load_wh": 300, "pv_wh": 500, "curtailed_wh": curtailed,
            "charge_wh": 0, "discharge_wh": 0, "soc_end_pct": None}


def test_limit_events_are_slots_at_or_over_a_limit_or_with_curtailment() -> None:
    slots = [slot(0, imported=99), slot(1, imported=100), slot(2, imported=101), slot(3, exported=50),
             slot(4, exported=51), slot(5)]
    events = limit_events(slots, [household_slot(5, curtailed=20)], import_limit_wh=100, export_limit_wh=50)
    assert [(e.index, e.what) for e in events] == [
        (1, "import at the limit"), (2, "import over the limit"), (3, "export at the limit"),
        (4, "export over the limit"), (5, "PV curtailed")]
    assert events[-1].curtailed_wh == 20


def test_a_zero_limit_with_nothing_flowing_is_no_event() -> None:
    assert limit_events([slot(0)], [], import_limit_wh=0, export_limit_wh=0) == []


def test_flows_draw_a_feeder_limit_only_where_it_lies_near_the_flows() -> None:
    rows = [household_slot(0), household_slot(1)]
    near = flows_chart([slot(0, imported=250), slot(1)], rows, SLOT_S, 1200, 150_000, [])
    assert [h["value"] for h in near["hlines"]] == [1.2]  # 1.2 kW against 2 kW PV; not 150 kW
    assert near["series"][0] == {"name": "load", "values": [1.2, 1.2], "style": "area"}
    assert near["series"][2]["values"] == [1.0, 0.0]  # 250 Wh in 15 min: 1 kW


def test_prices_follow_the_tariff_in_force_at_each_slot() -> None:
    tariff = Tariff(300_000, 80_000, dynamic=(PricePoint(101 * SLOT_S, 200_000, 50_000),))
    chart = price_chart([slot(0, price=150_000), slot(1), slot(2, price=120_000)], tariff)
    values = {s["name"]: s["values"] for s in chart["series"]}
    assert values == {"clearing price": [0.15, None, 0.12], "grid import price": [0.3, 0.2, 0.2],
                      "feed-in price": [0.08, 0.05, 0.05]}


def test_the_network_has_one_edge_per_seller_and_buyer() -> None:
    trades = [{"seller": "h001", "buyer": "h002", "energy_wh": 100}, {"seller": "h001", "buyer": "h002",
                                                                      "energy_wh": 50},
              {"seller": "h003", "buyer": "h002", "energy_wh": 20}]
    households = [{"household": h, "role": "prosumer"} for h in ("h001", "h002", "h003", "h004")]
    chart = trade_network(trades, households)
    assert [n["id"] for n in chart["nodes"]] == ["h001", "h002", "h003"]  # h004 did not trade
    assert chart["edges"] == [{"from": "h001", "to": "h002", "kwh": 0.15, "trades": 2},
                              {"from": "h003", "to": "h002", "kwh": 0.02, "trades": 1}]


def test_embedded_data_cannot_close_its_script_element() -> None:
    text = embedded_json({"label": "</script><script>alert(1)</script>"})
    assert "<" not in text and ">" not in text
    assert json.loads(text) == {"label": "</script><script>alert(1)</script>"}


def test_a_page_is_written_whole(tmp_path: Path) -> None:
    page = tmp_path / "deep" / "report.html"
    write_page(page, "<p>one</p>")
    write_page(page, "<p>two</p>")
    assert page.read_text() == "<p>two</p>" and [p.name for p in page.parent.iterdir()] == ["report.html"]


def test_the_tariff_is_described_by_its_kind() -> None:
    assert tariff_text(Tariff()) == "flat, import 0.3, feed-in 0.08 per kWh"
    peak = Tariff(time_of_use=(TouPeriod("17:00", "21:00", 450_000),), timezone="Europe/Berlin")
    assert tariff_text(peak).startswith("time of use, 1 period(s) in Europe/Berlin")
    assert tariff_text(Tariff(dynamic=(PricePoint(0, 1, 0),))).startswith("dynamic, 1 price point(s)")
