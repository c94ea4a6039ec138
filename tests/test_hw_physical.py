"""hw_space.physical: voltage-frequency scaling, DRAM channels, SRAM tables, zero gating; and how the
cost model uses them (defaults unchanged, each physical cost moves only what it should)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from hw_space import ENERGY_PARTS, AcceleratorSpec, CostModel, EnergyTable, Layer, resnet18
from hw_space import energy as energy_mod
from hw_space.physical import (
    DRAM_TECHS,
    EYERISS_GMACS_PER_W,
    EYERISS_VF,
    EYERISS_VF_POINTS,
    VFCurve,
    cacti_sram,
    channel_bytes_per_cycle,
    dram_tech,
    dynamic_energy_scale,
    leakage_scale,
    zero_fractions,
)

# ----------------------------------------------------------------------------- voltage and clock


def test_f_max_passes_through_cited_points_and_is_monotone() -> None:
    for v, f in EYERISS_VF_POINTS:
        assert EYERISS_VF.f_max_mhz(v) == pytest.approx(f, rel=1e-6)
    lo, hi = EYERISS_VF.v_range
    fs = [EYERISS_VF.f_max_mhz(v) for v in np.linspace(lo, hi, 50)]
    assert all(b > a for a, b in zip(fs, fs[1:]))
    assert (lo, hi) == (0.82, 1.17)  # Eyeriss JSSC 2017 Table IV core supply range


def test_v_min_inverts_f_max_and_refuses_out_of_range() -> None:
    for f in (120.0, 175.0, 240.0):
        assert EYERISS_VF.f_max_mhz(EYERISS_VF.v_min(f)) == pytest.approx(f, rel=1e-6)
    assert EYERISS_VF.v_min(50.0) == 0.82  # below the lowest point's clock: the lowest supply
    with pytest.raises(ValueError, match="exceeds") as err:
        EYERISS_VF.v_min(300.0)
    assert "\n" not in str(err.value)
    for bad in (0.5, 1.3, float("nan"), "1.0", True):
        with pytest.raises(ValueError, match="voltage must be a number in"):
            EYERISS_VF.f_max_mhz(bad)  # type: ignore[arg-type]
    assert EYERISS_VF.operating_point(1.0) == pytest.approx((1.0, 200.0))


def test_vf_curve_validates_points() -> None:
    with pytest.raises(ValueError, match="three"):
        VFCurve(points=((0.8, 100.0), (1.0, 90.0), (1.2, 300.0)))
    with pytest.raises(ValueError, match="three"):
        VFCurve(points=((0.8, 100.0), (1.0, 200.0)))
    other = VFCurve(points=((0.6, 300.0), (0.8, 700.0), (1.0, 1000.0)), name="28 nm example")
    assert other.f_max_mhz(0.8) == pytest.approx(700.0)


def test_v_squared_energy_matches_eyeriss_efficiency_within_one_percent() -> None:
    assert dynamic_energy_scale(None) == 1.0 and leakage_scale(None) == 1.0
    assert dynamic_energy_scale(0.5) == pytest.approx(0.25)
    assert leakage_scale(0.82) == pytest.approx(0.82)
    measured = EYERISS_GMACS_PER_W[0.82] / EYERISS_GMACS_PER_W[1.0]  # 122.8 / 83.1
    predicted = 1.0 / dynamic_energy_scale(0.82)
    assert predicted == pytest.approx(measured, rel=0.01)


# ----------------------------------------------------------------------------- DRAM channels


def test_dram_channel_bandwidth_and_energy_arithmetic() -> None:
    lp = dram_tech("LPDDR4")
    assert lp.gbps_per_channel == 6.4 and lp.channel_bits == 16
    # 4 channels x 6.4 GB/s = 25.6 GB/s; at 400 MHz that is 64 bytes per cycle
    assert channel_bytes_per_cycle(lp, 4, 400.0) == pytest.approx(64.0)
    assert channel_bytes_per_cycle(dram_tech("hbm2"), 1, 1000.0) == pytest.approx(32.0)
    # Accelergy CACTI plug-in table, pJ per bit
    assert {k: t.pj_per_bit for k, t in DRAM_TECHS.items()} == {"lpddr4": 8.0, "ddr3": 70.0, "gddr5": 14.0,
                                                              "hbm2": 3.9}
    assert lp.word_pj(16) == pytest.approx(128.0)
    assert all(t.phy_mm2 > 0 and t.standby_mw > 0 for t in DRAM_TECHS.values())
    with pytest.raises(ValueError, match="dram_tech must be one of lpddr4, ddr3, gddr5, hbm2"):
        dram_tech("ddr9")
    with pytest.raises(ValueError, match="dram_channels"):
        channel_bytes_per_cycle(lp, 0, 200.0)


# ----------------------------------------------------------------------------- SRAM tables


def test_sram_densities_reproduce_eyeriss_split_and_cacti_cross_check() -> None:
    e = energy_mod
    glb = e.EYERISS_GBUF_KB * e.SRAM_MM2_PER_KB
    spads = e.EYERISS_PES * e.EYERISS_RF_KB_PER_PE * e.RF_MM2_PER_KB
    assert (glb + spads) / e.EYERISS_CORE_MM2 == pytest.approx(2 / 3, rel=1e-3)  # "two-thirds"
    assert spads / glb == pytest.approx(2.5, rel=1e-3)                            # "2.5x larger"
    total = glb + spads + e.EYERISS_PES * e.PE16_MM2
    assert total == pytest.approx(e.EYERISS_CORE_MM2, abs=0.01)
    # CACTI 7 (40 nm, 32 banks) scaled to 65 nm lands within 10 % of the Eyeriss-derived density
    assert cacti_sram(102400, 32, 64, node_nm=65)["mm2_per_kb"] == pytest.approx(e.SRAM_MM2_PER_KB, rel=0.1)
    with pytest.raises(ValueError, match="no CACTI row"):
        cacti_sram(1000)


def test_zero_fractions_validation() -> None:
    assert zero_fractions(None, 3) == [0.0, 0.0, 0.0]
    assert zero_fractions(0.5, 2) == [0.5, 0.5]
    assert zero_fractions([0.1, 0.2], 2) == [0.1, 0.2]
    for bad, needle in (([0.1], "1 values for 2 layers"), ([0.1, 1.5], r"\[0, 1\]"), ("ab", "must be")):
        with pytest.raises(ValueError, match=needle):
            zero_fractions(bad, 2)


# ----------------------------------------------------------------------------- the cost model

EYERISS = AcceleratorSpec(rows=12, cols=14, rf_bytes=512, gbuf_bytes=108 * 1024, dataflow="rs", dram_bw=8.0,
                          noc_bw=24.0, clock_mhz=200.0, precision_bits=16)
NET = [Layer("c1", 31, 31, 5, 5, 16, 32), Layer("c2", 15, 15, 3, 3, 32, 64, groups=2),
       Layer.gemm("fc", 1, 100, 256), Layer("pool", 13, 13, 3, 3, 64, 64, stride=2, groups=64, kind="pool")]


def test_defaults_are_the_model_before_physical_costs() -> None:
    spec = AcceleratorSpec.from_dict({k: v for k, v in EYERISS.to_dict().items()
                                      if k not in ("voltage", "dram_tech", "dram_channels")})
    assert spec == EYERISS and spec.dram_bytes_per_cycle == spec.dram_bw
    explicit = dataclasses.replace(EYERISS, voltage=1.0)  # the nominal supply changes nothing
    a, b = CostModel(EYERISS).layers(NET, 2), CostModel(explicit).layers(NET, 2)
    for key in ("total_cycles", "energy_uj", *[f"energy_{p}_uj" for p in ENERGY_PARTS]):
        np.testing.assert_allclose(a[key], b[key], rtol=1e-12)
    c = CostModel(EYERISS).layers(NET, 2, zero_frac=0.0)
    np.testing.assert_allclose(a["energy_uj"], c["energy_uj"], rtol=1e-12)
    assert np.all(a["energy_phy_uj"] == 0) and CostModel(EYERISS).area_mm2()["phy"] == 0


def test_clock_above_f_max_rejected_one_line() -> None:
    with pytest.raises(ValueError, match=r"clock_mhz 250 exceeds f_max 200.0 MHz at voltage 1 V") as err:
        dataclasses.replace(EYERISS, clock_mhz=250.0, voltage=1.0)
    assert "\n" not in str(err.value)
    dataclasses.replace(EYERISS, clock_mhz=250.0, voltage=1.17)  # allowed at the top supply
    with pytest.raises(ValueError, match="voltage must be a number in"):
        dataclasses.replace(EYERISS, voltage=0.7)
    with pytest.raises(ValueError, match="give both or neither"):
        dataclasses.replace(EYERISS, dram_tech="lpddr4")
    with pytest.raises(ValueError, match="dram_channels must be a positive integer"):
        dataclasses.replace(EYERISS, dram_tech="lpddr4", dram_channels=0)
    with pytest.raises(ValueError, match="dram_tech must be one of"):
        dataclasses.replace(EYERISS, dram_tech="sram", dram_channels=1)


def test_voltage_scales_dynamic_energy_by_v_squared_and_nothing_else() -> None:
    low = dataclasses.replace(EYERISS, clock_mhz=100.0)
    a = CostModel(low).layers(NET)
    b = CostModel(dataclasses.replace(low, voltage=0.82)).layers(NET)
    np.testing.assert_array_equal(a["total_cycles"], b["total_cycles"])
    for part in ("gbuf", "noc", "rf", "mac"):
        np.testing.assert_allclose(b[f"energy_{part}_uj"], 0.82 ** 2 * a[f"energy_{part}_uj"], rtol=1e-12)
    np.testing.assert_allclose(b["energy_leak_uj"], 0.82 * a["energy_leak_uj"], rtol=1e-12)
    np.testing.assert_allclose(b["energy_dram_uj"], a["energy_dram_uj"], rtol=1e-12)  # off-chip supply


def test_dram_channels_set_bandwidth_energy_area_and_standby() -> None:
    base = dataclasses.replace(EYERISS, dram_bw=1.0)
    one = dataclasses.replace(base, dram_tech="lpddr4", dram_channels=1)
    two = dataclasses.replace(one, dram_channels=2)
    assert one.dram_bytes_per_cycle == pytest.approx(6.4e3 / 200.0)  # 32 B/cycle at 200 MHz
    assert two.dram_bytes_per_cycle == pytest.approx(2 * one.dram_bytes_per_cycle)
    layers = resnet18()
    d0, d1, d2 = (CostModel(s).layers(layers) for s in (base, one, two))
    np.testing.assert_array_equal(d1["dram_bytes"], d0["dram_bytes"])  # same traffic ...
    assert np.all(d2["dram_cycles"] <= d1["dram_cycles"]) and np.all(d1["dram_cycles"] < d0["dram_cycles"])
    words = d1["dram_bytes"] / 2  # 16-bit words
    np.testing.assert_allclose(d1["energy_dram_uj"], words * 16 * 8.0 * 1e-6, rtol=1e-12)  # 8 pJ/bit
    np.testing.assert_allclose(d2["energy_phy_uj"], 2 * 13.0 * d2["latency_ms"], rtol=1e-12)  # mW x ms
    m1, m0 = CostModel(one), CostModel(base)
    assert m1.area_mm2()["phy"] == pytest.approx(DRAM_TECHS["lpddr4"].phy_mm2)
    assert m1.area_mm2()["total"] == pytest.approx(m0.area_mm2()["total"] + m1.area_mm2()["phy"])
    net = m1.network(layers)
    assert net["area_breakdown_mm2"]["phy"] > 0
    assert net["energy_uj"] == pytest.approx(sum(net["energy_breakdown_uj"].values()))


@pytest.mark.parametrize("df", ["ws", "os", "is", "rs"])
def test_gating_cuts_mac_and_one_rf_read_per_gated_mac_only(df: str) -> None:
    spec = dataclasses.replace(EYERISS, dataflow=df)
    model = CostModel(spec)
    z = [0.5, 0.25, 0.0, 0.9]
    a, b = model.layers(NET, 2), model.layers(NET, 2, zero_frac=z)
    en = model.energy
    saved_mac = np.asarray(z) * a["macs"] * en.mac_pj(16) * 1e-6
    saved_rf = np.asarray(z) * a["macs"] * en.access_pj("rf", 16) * 1e-6
    np.testing.assert_allclose(a["energy_mac_uj"] - b["energy_mac_uj"], saved_mac, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(a["energy_rf_uj"] - b["energy_rf_uj"], saved_rf, rtol=1e-9, atol=1e-15)
    for part in ("dram", "gbuf", "noc", "leak", "phy"):
        np.testing.assert_array_equal(a[f"energy_{part}_uj"], b[f"energy_{part}_uj"])
    np.testing.assert_array_equal(a["total_cycles"], b["total_cycles"])
    assert b["energy_uj"][0] < a["energy_uj"][0] and b["energy_uj"][2] == a["energy_uj"][2]
    half = CostModel(spec, EnergyTable(gate_eff=0.5)).layers(NET, 2, zero_frac=z)
    np.testing.assert_allclose(a["energy_mac_uj"] - half["energy_mac_uj"], saved_mac / 2, rtol=1e-9, atol=1e-15)
    with pytest.raises(ValueError, match="4 layers"):
        model.layers(NET, zero_frac=[0.1, 0.2])
    with pytest.raises(ValueError, match="gate_eff"):
        EnergyTable(gate_eff=1.5)


def test_hw_cost_cli_physical_flags(tmp_path, capsys) -> None:  # type: ignore[no-untyped-def]
    import argparse
    import json

    from hw_space import write_topology_csv
    from hwnas.cli import hw as hw_commands
    from hwnas.errors import CLIError

    parser = argparse.ArgumentParser(prog="hwnas")
    hw_commands.add_parsers(parser.add_subparsers(dest="command", required=True))
    csv = write_topology_csv(tmp_path / "net.csv", [NET[0], Layer("c3", 16, 16, 3, 3, 8, 8)])
    base = ["hw", "cost", "--topology", str(csv), "--rows", "8", "--cols", "8", "--clock-mhz", "150"]
    args = parser.parse_args([*base, "--voltage", "0.9", "--dram-tech", "hbm2", "--dram-channels", "2", "--json"])
    assert args.func(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["spec"]["voltage"] == 0.9 and doc["spec"]["dram_tech"] == "hbm2"
    assert doc["network"]["energy_breakdown_uj"]["phy"] > 0 and doc["network"]["area_breakdown_mm2"]["phy"] > 0
    args = parser.parse_args([*base, "--voltage", "0.85"])
    with pytest.raises(CLIError, match="exceeds f_max") as err:
        args.func(args)
    assert "\n" not in str(err.value)
