"""The whole system end to end: broker, virtual devices, agents, coordinator, ledger.

One small run per broker (the same seed), checked from its output files.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections import defaultdict
from pathlib import Path

import pytest

from broker.units import money_u
from gridmesh.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.broker]
HOUSEHOLDS, SLOTS, SEED = 6, 6, 11
START = "2016-06-06T10:00"  # late morning: PV surplus, so peers trade


def have_mosquitto() -> bool:
    """mosquitto is here; where CI is set it must be, so its half of the tests never
    silently disappears."""
    found = shutil.which("mosquitto") is not None or Path("/usr/sbin/mosquitto").exists()
    if not found and os.environ.get("CI"):
        pytest.fail("mosquitto is not installed but CI is set: .ci/run installs it")
    return found


def run_testbed(out: Path, broker: str, *extra: str) -> dict[str, object]:
    code = main(["testbed", "--households", str(HOUSEHOLDS), "--slots", str(SLOTS),
                 "--seed", str(SEED), "--start", START, "--broker", broker, "--out", str(out), "--json",
                 *extra])
    assert code == 0
    summary: dict[str, object] = json.loads((out / "summary.json").read_text())
    return summary


@pytest.fixture(scope="module", params=["mosquitto", "embedded"])
def run_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    kind = request.param
    if kind == "mosquitto" and not have_mosquitto():
        pytest.skip("mosquitto is not installed")
    out = tmp_path_factory.mktemp(f"testbed-{kind}") / "run"
    run_testbed(out, kind)
    return out


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql).fetchall()


def test_energy_is_conserved_per_household_and_slot(run_dir: Path) -> None:
    data = rows(run_dir / "results.db",
                "SELECT household, slot, load_wh, pv_wh, charge_wh, discharge_wh, import_wh, "
                "export_wh, metered_wh FROM household_slots")
    assert len(data) == HOUSEHOLDS * SLOTS
    for _, _, load, pv, charge, discharge, imp, exp, metered in data:
        assert imp - exp == load - pv - discharge + charge  # type: ignore[operator]
        assert metered == imp - exp  # type: ignore[operator]  # the signed meter report


def test_every_order_got_exactly_one_result_and_one_award(run_dir: Path) -> None:
    verdicts = rows(run_dir / "coordinator.db", "SELECT ref, accepted FROM verdicts WHERE kind='order'")
    refs = [ref for ref, _ in verdicts]
    assert refs and len(refs) == len(set(refs))
    awards = rows(run_dir / "coordinator.db", "SELECT payload FROM awards")
    awarded = [json.loads(p)["order_id"] for (p,) in awards]  # type: ignore[arg-type]
    accepted = sorted(ref for ref, ok in verdicts if ok)
    assert sorted(awarded) == accepted


def test_awards_sum_to_zero_with_the_grid(run_dir: Path) -> None:
    net: dict[int, int] = defaultdict(int)
    for (payload,) in rows(run_dir / "coordinator.db", "SELECT payload FROM awards"):
        award = json.loads(payload)  # type: ignore[arg-type]
        net[award["slot"]] += award["energy_wh"] if award["side"] == "buy" else -award["energy_wh"]
    clearings = rows(run_dir / "coordinator.db", "SELECT payload FROM clearings")
    assert clearings
    for (payload,) in clearings:
        clearing = json.loads(payload)  # type: ignore[arg-type]
        grid_net = clearing["grid_import_wh"] - clearing["grid_export_wh"]
        assert net[clearing["slot"]] == grid_net


def test_the_ledger_audit_passes(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ledger", "audit", str(run_dir / "ledger.db")]) == 0
    assert "audit passed" in capsys.readouterr().out


def test_summary_and_csvs_are_written(run_dir: Path) -> None:
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["households"] == HOUSEHOLDS and summary["slots"] == SLOTS
    assert summary["orders_accepted"] > 0 and summary["orders_rejected"] == 0
    assert summary["reports_accepted"] == HOUSEHOLDS * SLOTS
    assert summary["trades"] > 0 and summary["p2p_wh"] > 0
    for table in ("slots", "households", "household_slots", "trades", "orders"):
        assert (run_dir / f"{table}.csv").read_text().count("\n") > 1


def test_same_seed_gives_the_same_head_hash_again_and_on_every_broker(
    run_dir: Path, tmp_path: Path
) -> None:
    first = json.loads((run_dir / "summary.json").read_text())
    kinds = ["mosquitto", "embedded"] if have_mosquitto() else ["embedded"]
    heads = {kind: run_testbed(tmp_path / kind, kind)["head_hash"] for kind in kinds}
    assert set(heads.values()) == {first["head_hash"]}, (first["broker"], heads)


def test_a_realtime_run_follows_the_wall_clock_and_trades(tmp_path: Path) -> None:
    speed = 1800
    summary = run_testbed(tmp_path / "rt", "embedded", "--clock", "realtime", "--speed", str(speed))
    # Ticks span from one slot before the first to two gate closures after the last.
    span_s = (SLOTS + 2) * 900 - 300
    assert float(summary["wall_s"]) >= span_s / speed  # type: ignore[arg-type]
    assert summary["orders_accepted"] and summary["orders_rejected"] == 0
    assert summary["reports_accepted"] == HOUSEHOLDS * SLOTS
    assert summary["ledger_height"] == SLOTS + 1


def test_a_changed_transaction_fails_the_audit_naming_it(
    run_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    copy = tmp_path / "ledger.db"
    shutil.copy(run_dir / "ledger.db", copy)
    with sqlite3.connect(copy) as conn:
        height, idx, body = conn.execute(
            "SELECT height, idx, body FROM transactions WHERE kind='order' ORDER BY height, idx LIMIT 1"
        ).fetchone()
        tampered = body.replace('"energy_wh":', '"energy_wh":1', 1)
        assert tampered != body
        conn.execute("UPDATE transactions SET body=? WHERE height=? AND idx=?", (tampered, height, idx))
    assert main(["ledger", "audit", str(copy)]) == 1
    err = capsys.readouterr().err
    assert f"block {height}, transaction {idx}" in err


def test_unknown_config_key_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("community:\n  tarif: {}\n")
    assert main(["testbed", "--config", str(config), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml: community.tarif: unknown key" in err
    assert not (tmp_path / "out").exists()  # nothing started


def test_bad_command_line_values_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["testbed", "--households", "0", "--out", str(tmp_path / "out")]) == 2
    assert "--households: must be >= 1" in capsys.readouterr().err


def test_a_community_with_pv_only_households_runs_and_balances(tmp_path: Path) -> None:
    config = tmp_path / "mixed.yaml"
    config.write_text("testbed:\n  households: 6\n  slots: 4\n  start: 2016-06-06T10:00\n"
                      "  prosumer_pct: 30\n  pv_only_pct: 40\n")
    assert main(["testbed", "--config", str(config), "--out", str(tmp_path / "run"), "--json"]) == 0
    roles = dict(rows(tmp_path / "run" / "results.db", "SELECT role, COUNT(*) FROM households GROUP BY role"))
    assert roles == {"prosumer": 2, "pv": 2, "consumer": 2}
    for load, pv, charge, discharge, imp, exp, metered in rows(
        tmp_path / "run" / "results.db",
        "SELECT s.load_wh, s.pv_wh, s.charge_wh, s.discharge_wh, s.import_wh, s.export_wh, s.metered_wh "
        "FROM household_slots s JOIN households h USING (household) WHERE h.role = 'pv'"):
        assert charge == discharge == 0 and imp - exp == load - pv  # type: ignore[operator]
        assert metered == imp - exp  # type: ignore[operator]


def test_a_scheduled_meter_failure_costs_that_household_its_reports_and_nothing_else(
    tmp_path: Path
) -> None:
    config = tmp_path / "faulty.yaml"
    config.write_text("testbed:\n  households: 4\n  slots: 6\n  start: 2016-06-06T10:00\n"
                      "  broker: embedded\n  faults:\n"
                      "    - {household: h002, device: meter, fault: failure, from_slot: 2, slots: 2}\n")
    assert main(["testbed", "--config", str(config), "--out", str(tmp_path / "run"), "--json"]) == 0
    missing = rows(tmp_path / "run" / "results.db",
                   "SELECT household, slot FROM household_slots WHERE metered_wh IS NULL ORDER BY slot")
    assert missing and {household for household, _ in missing} == {"h002"}
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["reports_accepted"] == 4 * 6 - len(missing)


def test_a_fault_on_a_device_the_household_lacks_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("testbed:\n  households: 4\n  slots: 2\n  prosumer_pct: 0\n"
                      "  faults:\n    - {household: h001, device: battery, fault: busy}\n")
    assert main(["testbed", "--config", str(config), "--out", str(tmp_path / "run")]) == 2
    assert "testbed.faults[0]: h001 (consumer) has no battery" in capsys.readouterr().err


def test_another_bundled_feeder_runs_and_an_unknown_one_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["testbed", "--feeder", "1-LV-semiurb4--0-sw", "--households", "4", "--slots", "2",
                 "--broker", "embedded", "--out", str(tmp_path / "semi"), "--json"]) == 0
    profiles = {p for (p,) in rows(tmp_path / "semi" / "results.db", "SELECT role FROM households")}
    assert profiles <= {"prosumer", "consumer"}
    assert main(["testbed", "--feeder", "nope", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "--feeder: 'nope' is not bundled (bundled: 1-LV-rural3--0-sw, 1-LV-semiurb4--0-sw)" in err


def test_a_feeder_extracted_into_another_folder_runs_from_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from simulators.profiles import DATA_DIR

    data = tmp_path / "feeders"
    data.mkdir()
    name = "1-LV-semiurb4--0-sw"
    shutil.copy(DATA_DIR / f"feeder-{name}.csv", data)
    assert main(["testbed", "--feeder", name, "--feeder-data", str(data), "--households", "3",
                 "--slots", "2", "--broker", "embedded", "--out", str(tmp_path / "run"), "--json"]) == 2
    err = capsys.readouterr().err
    assert f"has no feeder-{name}.csv and profiles-{name}.csv in {data} (found: none)" in err
    shutil.copy(DATA_DIR / f"profiles-{name}.csv", data)
    assert main(["testbed", "--feeder", name, "--feeder-data", str(data), "--households", "3",
                 "--slots", "2", "--broker", "embedded", "--out", str(tmp_path / "run"), "--json"]) == 0
    assert rows(tmp_path / "run" / "results.db", "SELECT COUNT(*) FROM households") == [(3,)]


def test_a_start_outside_the_feeder_data_is_refused_before_anything_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main(["testbed", "--start", "2016-03-01", "--households", "2", "--slots", "2",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "no data for 2016-02-29 23:45" in err and "covers 2016-01-17 00:00" in err
    assert not out.exists()


def test_compare_sets_the_run_between_the_baselines_and_the_optimum(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["testbed", "--households", "6", "--slots", "8", "--seed", "11", "--start", START,
                 "--broker", "embedded", "--out", str(out), "--json", "--compare"]) == 0
    compared = json.loads((out / "compare.json").read_text())
    bills = {k: v["bill_u"] for k, v in compared["scenarios"].items()}
    summary = json.loads((out / "summary.json").read_text())
    assert bills["c"] == summary["bill_u"]  # the run as settled
    assert bills["a"] == summary["baseline_bill_u"]  # each member's savings are against (a)
    kpis = rows(out / "results.db", "SELECT household, bill_u, baseline_bill_u, savings_u FROM kpis")
    assert len(kpis) == 6 and all(base - bill == saved for _, bill, base, saved in kpis)  # type: ignore[operator]
    assert sum(base for _, _, base, _ in kpis) == bills["a"]  # type: ignore[misc]
    # Idle batteries end where they began, so (a) is a plan the optimum could have made.
    assert compared["scenarios"]["a"]["stored_change_wh"] == 0 and bills["d"] <= bills["a"]
    # The run's batteries ended fuller than they began, so it is a plan the optimum could
    # have made too (bar the market's rounding).
    assert compared["scenarios"]["c"]["stored_change_wh"] >= 0 and bills["d"] <= bills["c"]
    assert compared["scenarios"]["d"]["stored_change_wh"] >= 0
    assert compared["efficiency"] == pytest.approx((bills["a"] - bills["c"]) / (bills["a"] - bills["d"]))
    # What each scenario's batteries gained is worth the run's last feed-in price, and the
    # optimum is the best plan under that score too.
    price = compared["stored_price_u_per_kwh"]
    assert price == 80_000  # the default flat tariff's feed-in price
    valued = {k: v["valued_bill_u"] for k, v in compared["scenarios"].items()}
    assert all(valued[k] == bills[k] - money_u(compared["scenarios"][k]["stored_change_wh"], price)
               for k in "abcd")
    assert valued["d"] <= min(valued["a"], valued["b"], valued["c"])
    ratio = (valued["a"] - valued["c"]) / (valued["a"] - valued["d"])
    assert compared["efficiency_valued"] == pytest.approx(ratio)


def test_time_of_use_and_dynamic_prices_reach_the_settlements(tmp_path: Path) -> None:
    config = tmp_path / "tou.yaml"
    config.write_text("community:\n  tariff:\n    timezone: Europe/Berlin\n    time_of_use:\n"
                      "      - {start: '17:00', end: '21:00', import_u_per_kwh: 450000}\n"
                      "testbed:\n  households: 4\n  slots: 4\n  prosumer_pct: 0\n"
                      "  start: 2016-06-06T14:30\n  broker: embedded\n")
    assert main(["testbed", "--config", str(config), "--out", str(tmp_path / "tou"), "--json"]) == 0
    # 14:30 UTC is 16:30 in Berlin: two slots at the base price, then the evening peak.
    sql = ("SELECT slot, metered_wh, notrade_bill_u FROM household_slots WHERE household = 'h001' "
           "ORDER BY slot")
    billed = rows(tmp_path / "tou" / "results.db", sql)
    assert [bill * 1000 // metered for _, metered, bill in billed] == [300_000] * 2 + [450_000] * 2  # type: ignore[operator]
    prices = tmp_path / "prices.csv"
    prices.write_text("start_utc,import_u_per_kwh,feedin_u_per_kwh\n2016-06-06T15:00,210000,60000\n")
    assert main(["testbed", "--config", str(config), "--prices-csv", str(prices), "--out",
                 str(tmp_path / "dynamic"), "--json"]) == 0
    billed = rows(tmp_path / "dynamic" / "results.db", sql)
    assert [bill * 1000 // metered for _, metered, bill in billed] == [300_000] * 2 + [210_000] * 2  # type: ignore[operator]


def test_slots_beyond_the_block_cap_overflow_and_still_audit_and_replay(tmp_path: Path) -> None:
    config = tmp_path / "cap.yaml"
    config.write_text("community:\n  ledger: {max_tx_per_block: 10}\ntestbed:\n  households: 8\n"
                      "  slots: 4\n  start: 2016-06-06T10:00\n")
    out = tmp_path / "run"
    assert main(["testbed", "--config", str(config), "--out", str(out), "--json"]) == 0  # 1 if either failed
    slots = [s for (s,) in rows(out / "ledger.db", "SELECT slot FROM blocks WHERE height > 0")]
    assert len(slots) > len(set(slots))  # some slot took more than one block
    assert max(c for (c,) in rows(out / "ledger.db", "SELECT tx_count FROM blocks")) == 10  # type: ignore[type-var]


def test_two_replicas_and_the_coordinator_hold_the_same_head(tmp_path: Path) -> None:
    config = tmp_path / "rep.yaml"
    config.write_text("testbed:\n  households: 6\n  slots: 4\n  start: 2016-06-06T10:00\n  replicas: 2\n")
    out = tmp_path / "run"
    assert main(["testbed", "--config", str(config), "--out", str(out), "--json"]) == 0
    heads = {path.name: rows(path, "SELECT height, hash FROM blocks ORDER BY height DESC LIMIT 1")[0]
             for path in (out / "ledger.db", out / "replicas" / "r1.db", out / "replicas" / "r2.db")}
    assert len(set(heads.values())) == 1 and heads["ledger.db"][0] > 0
    assert "refused=0" in (out / "logs" / "replica-r1.log").read_text()


def test_every_member_checked_its_own_trades_in_the_ledger_without_an_alarm(run_dir: Path) -> None:
    stats = dict(rows(run_dir / "results.db", "SELECT name, SUM(value) FROM agent_stats GROUP BY name"))
    assert stats.get("proofs_verified", 0) >= HOUSEHOLDS * (SLOTS - 2)  # at least a report a slot each
    assert not {"proof_alarm", "proof_unexpected", "proof_missing", "bad_header_signature"} & {
        name for name, value in stats.items() if value}


def test_a_study_with_perfect_forecasts_gives_each_agent_its_households_truth(tmp_path: Path) -> None:
    out = tmp_path / "run"
    assert main(["testbed", "--households", "4", "--slots", "4", "--start", START, "--forecaster", "perfect",
                 "--out", str(out), "--json"]) == 0
    truth = (out / "config" / "truth" / "h001.csv").read_text().splitlines()
    assert truth[0] == "slot,load_wh,pv_wh" and len(truth) > 4 + 96
    physics = dict(((slot, load) for slot, load in rows(
        out / "results.db", "SELECT slot, load_wh FROM household_slots WHERE household = 'h001'")))
    for line in truth[1:]:
        slot, load, _ = map(int, line.split(","))
        if slot in physics:
            assert physics[slot] == load  # the file holds what the household then used


def test_changing_prices_have_the_agents_plan_their_batteries_over_the_horizon(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "tou.yaml"
    config.write_text("community:\n  tariff:\n    import_u_per_kwh: 300000\n    feedin_u_per_kwh: 50000\n"
                      "    time_of_use:\n      - {start: '00:00', end: '06:00', import_u_per_kwh: 180000}\n"
                      "      - {start: '17:00', end: '21:00', import_u_per_kwh: 450000}\n"
                      "testbed:\n  households: 3\n  slots: 6\n  prosumer_pct: 100\n"
                      "  start: 2016-01-19T00:00\n  broker: embedded\n  forecaster: perfect\n")
    out = tmp_path / "run"
    capsys.readouterr()
    assert main(["testbed", "--config", str(config), "--out", str(out), "--json"]) == 0  # audit passed
    summary = json.loads(capsys.readouterr().out)  # progress goes to stderr: stdout is the JSON alone
    assert summary["slots"] == 6
    stats = rows(out / "results.db", "SELECT SUM(value) FROM agent_stats WHERE name = 'horizon_setpoints'")
    assert stats[0][0] and stats[0][0] > 0  # type: ignore[operator]
    # Cheap night power goes into the batteries, on the planned setpoints, for the evening.
    charged = rows(out / "results.db", "SELECT SUM(charge_wh) FROM household_slots WHERE battery_remote = 1")
    assert charged[0][0] and charged[0][0] > 0  # type: ignore[operator]
