"""The terminal view, driven by its keys (textual's pilot): playback frames step and filter,
and the live view pauses while messages keep arriving; a missing terminal or textual is
named."""

from __future__ import annotations

import asyncio
import importlib.util
import sys
from pathlib import Path

import pytest
import yaml
from dashboard_traffic import SLOT, before_gate, community, gate, presence
from textual.widgets import DataTable, Input, Static

from broker.dashboard.app import DashboardView, PlaybackDashboard
from broker.dashboard.state import DashboardState
from broker.schema import to_dict
from gridmesh.cli import main
from simulators.playback import build_frames

SIZE = (160, 50)


def frames() -> tuple[DashboardState, ...]:
    """Three frames: who is there, the orders for the next slot, the gate's outcome."""
    batches = [[m for _, m in part()] for part in (presence, before_gate, gate)]
    return build_frames(community(), batches)


def shown(app: DashboardView, widget: str) -> str:
    return str(app.query_one(widget, Static).content)


def devices(app: DashboardView) -> dict[str, list[str]]:
    table = app.query_one("#devices", DataTable)
    rows = [[str(cell) for cell in table.get_row_at(i)] for i in range(table.row_count)]
    return {row[0]: row for row in rows}


def test_playback_steps_forward_and_back_and_filters_by_member() -> None:
    async def scenario() -> None:
        app = PlaybackDashboard(frames(), "playback of test", start=0)
        async with app.run_test(size=SIZE) as pilot:
            assert "playback of test: slot 1 of 3" in shown(app, "#header")
            assert "order book   no orders seen yet" in shown(app, "#market")
            await pilot.press("right", "right")
            assert "slot 3 of 3" in shown(app, "#header")
            assert f"clearing     slot {SLOT} (uniform): price 0.190/kWh" in shown(app, "#market")
            assert devices(app)["h001"][7] == "sell partial 300/400 Wh"
            await pilot.press("right")  # past the last slot: stays
            assert "slot 3 of 3" in shown(app, "#header")
            await pilot.press("left")
            assert "slot 2 of 3" in shown(app, "#header") and devices(app)["h001"][7] == "-"
            assert "1 in all" in shown(app, "#rejections")
            await pilot.press("home")
            assert "slot 1 of 3" in shown(app, "#header")
            await pilot.press("end")
            assert "slot 3 of 3" in shown(app, "#header")

            await pilot.press("f")
            assert app.query_one("#filter", Input).has_focus
            await pilot.press(*"h02", "left", "0", "enter")  # arrows edit the filter while it is typed
            assert list(devices(app)) == ["h002"] and "filter: h002" in shown(app, "#header")
            assert "slot 3 of 3" in shown(app, "#header")
            assert "(filtered members' orders)" in shown(app, "#market")
            await pilot.press("left")  # the filter stays while stepping
            assert list(devices(app)) == ["h002"]
            await pilot.press("f", *["backspace"] * 4, "enter")  # empty: everyone again
            assert list(devices(app)) == ["coordinator", "h001", "h002", "h003"]
            await pilot.press("q")
        assert app.return_code == 0

    asyncio.run(scenario())


@pytest.mark.parametrize("argv", [
    ["monitor", "--broker", "127.0.0.1:9", "--community", "demo", "--dashboard"],
    ["replay", "/nowhere"],
])
def test_the_terminal_view_without_a_terminal_points_at_print(argv: list[str],
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "needs a terminal (standard input and output are not one); --print writes the dashboard" in err


def test_the_terminal_view_without_textual_says_how_to_install_it(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "textual" else real(name, *a))
    assert main(["monitor", "--broker", "127.0.0.1:9", "--community", "demo", "--dashboard"]) == 2
    assert "pip install 'gridmesh[dashboard]'" in capsys.readouterr().err


def test_what_is_wrong_with_the_dashboards_arguments_is_named(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    dashboard = ["monitor", "--broker", "127.0.0.1:9", "--dashboard"]
    registry = tmp_path / "community.yaml"
    registry.write_text(yaml.safe_dump({**to_dict(community()), "tarif": {}}))
    for argv, problem in [
        (["monitor", "--broker", "127.0.0.1:9", "--print"], "--print, --registry and --filter go with"),
        ([*dashboard, "--print"], "give --community ID or --registry FILE"),
        ([*dashboard, "--registry", str(registry)], f"{registry}: tarif: unknown key"),
        ([*dashboard, "--community", "demo", "--count", "3"], "--count with --dashboard goes with --print"),
        ([*dashboard, "--community", "demo", "--print", "--seconds", "0"], "--seconds must be positive"),
        ([*dashboard, "--community", "demo", "--print"], "cannot reach the broker at 127.0.0.1:9"),
    ]:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert problem in err and len(err.splitlines()) == 1, (argv, err)
    registry.write_text(yaml.safe_dump(to_dict(community())))
    assert main([*dashboard, "--registry", str(registry), "--community", "other", "--print"]) == 2
    assert "--community other is not the registry's community" in capsys.readouterr().err
