"""hw_space.physical: voltage-frequency scaling, DRAM channels, SRAM tables, zero gating; and how the
cost model uses them (defaults unchanged, each physical cost moves only what it should)."""

from __future__ import annotations

import numpy as np
import pytest

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
