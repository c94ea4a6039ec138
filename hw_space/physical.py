"""Physical costs that the base energy table leaves free: supply voltage vs clock, DRAM channels of a
named technology, and zero gating of PE energy (numpy only; pure values and functions, no state).

Every number below carries its source beside it, or is marked **assumed** with the reasoning.

Voltage and clock
-----------------
Eyeriss (Y.-H. Chen, T. Krishna, J. Emer, V. Sze, IEEE JSSC 52(1), 2017) is the reference chip
(65 nm, the process of :class:`hw_space.energy.EnergyTable`):

* Table IV: core supply 0.82-1.17 V, core clock 100-250 MHz.
* Table V: AlexNet measured at 1 V with a 200 MHz core clock: 83.1 GMACS/W.
* Sec. V-A / Fig. 17: highest efficiency 122.8 GMACS/W at 0.82 V; highest throughput at 1.17 V.

The V-f points are (0.82 V, 100 MHz), (1.0 V, 200 MHz), (1.17 V, 250 MHz). The middle one is
Table V's operating point. The two ends pair the ends of Table IV's voltage and clock ranges. That
pairing is **our reading** of Fig. 17: each voltage runs at its highest clock, so the lowest voltage
runs at the lowest clock. :class:`VFCurve` fits the alpha-power law of T. Sakurai and A. R. Newton
(IEEE JSSC 25(2), 1990), ``f_max = k (V - V_t)^alpha / V``, exactly through the three points.
Dynamic energy per operation scales as ``(V / V_nom)^2`` with ``V_nom = 1.0 V``, the supply at which
the energy table is set. Eyeriss's own two points check this: 122.8 / 83.1 = 1.478 against
(1 / 0.82)^2 = 1.487, within 1 %. Leakage power is taken as ``∝ V`` (leakage current held constant;
**assumed**: DIBL makes it grow faster than that).

DRAM channels
-------------
:data:`DRAM_TECHS` lists bandwidth per channel (JEDEC data rates × channel width), energy per bit,
and PHY area and standby power per channel. The energy per bit comes from the DRAM table of
Accelergy's CACTI plug-in (github.com/Accelergy-Project/accelergy-cacti-plug-in, ``cacti_wrapper.py``,
``DRAM_estimate_energy``): LPDDR4 8 pJ/bit ("public data"), DDR3 70 (Malladi et al., ISCA 2012),
GDDR5 14 and HBM2 3.9 (Chatterjee et al., MICRO 2017). That plug-in gives DRAM zero area.

The PHY area per channel is **assumed**, scaled from Eyeriss's pad ring. The chip is 4.0 x 4.0 mm
and the core is 3.5 x 3.5 mm (JSSC 2017 Table IV), which leaves 3.75 mm^2 of I/O ring for a 64-bit
off-chip data bus and its control. That is 0.0586 mm^2 per data bit in 65 nm; it is applied to the
pad-based interfaces (DDR3, LPDDR4, GDDR5). HBM2 uses microbumps at about 1/10 of a wire-bond pad's
area per signal (55 um pitch against ~175 um), so it gets 1/10 of that per bit (**assumed**).

The standby power per channel is **assumed**. It is the order of the DRAM devices' precharge-standby
current (IDD2N) times VDD, as typical vendor datasheets give them:

* LPDDR4 x16 channel: ~12 mA at 1.1 V, 13 mW.
* DDR3 64-bit channel: 8 x8 devices at ~35 mA and 1.5 V, 420 mW.
* GDDR5 x32 device: ~200 mA at 1.5 V, 300 mW.
* HBM2 128-bit channel: ~20 mA at 1.2 V, 24 mW.

Treat these four as rough figures: they set how much an idle channel costs, not its access energy.

SRAM from CACTI
---------------
:data:`CACTI_40NM_SRAM` holds CACTI 7 outputs at 40 nm for Eyeriss-like memories, from
``cacti/out.csv`` in the Accelergy CACTI plug-in repository. Its rows are a 448 B 16-bit spad, an
8 KB 64-bit bank, and 100 KB in 1, 16 and 32 banks. Each row gives area and standby leakage. The
energy table takes its SRAM densities from Eyeriss's own area split instead (65 nm, the same chip;
see :mod:`hw_space.energy`). These rows are the cross-check and the leakage figure a bench can try:
0.40-0.78 mW/KB. The run's cell type is not recorded; the plug-in's ``default_cfg.cfg`` sets
``itrs-lstp``. :func:`cacti_sram` scales a row to another node: area by ``(node / 40)^2``, leakage
per KB unchanged (**assumed**).

Zero gating
-----------
Eyeriss gates zero ifmap values: "the gating logic will disable the read of the filter spad and
prevent the MAC datapath from switching", saving 45 % of PE power (JSSC 2017 Sec. IV-C). Ifmap zero
fractions per AlexNet layer are those of Table V ("Zeros in Ifmaps"): :data:`EYERISS_ALEXNET_ZEROS`.
In the cost model a fraction ``z`` of a layer's MACs is gated. A gated MAC saves its MAC energy and
one RF read (the other operand's read) times ``gate_eff``. ``gate_eff`` is **assumed** 1.0 (ideal
gating: a gated op costs no dynamic energy). Nothing else is gated: ifmap reads, psum accesses, NoC,
buffer, DRAM and leakage are unchanged.

Example:
    >>> round(EYERISS_VF.f_max_mhz(1.0), 3)
    200.0
    >>> round(dynamic_energy_scale(0.82), 3)
    0.672
    >>> lp = dram_tech("lpddr4")
    >>> channel_bytes_per_cycle(lp, 2, 200.0)  # two x16 LPDDR4 channels seen from a 200 MHz core
    64.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

NOMINAL_V = 1.0  # V: EnergyTable's supply (energy.py: 65 nm at 1.0 V), Eyeriss JSSC 2017 Table V "at 1 V"

# (core supply V, highest core clock MHz) of Eyeriss, JSSC 2017; see the module docstring for the pairing
EYERISS_VF_POINTS: tuple[tuple[float, float], ...] = (
    (0.82, 100.0),   # Table IV lower ends of supply (0.82-1.17 V) and clock (100-250 MHz)
    (1.0, 200.0),    # Table V: measurements at 1 V, 200 MHz core clock
    (1.17, 250.0),   # Table IV upper ends; Fig. 17: highest throughput at 1.17 V
)
EYERISS_GMACS_PER_W = {1.0: 83.1, 0.82: 122.8}  # JSSC 2017 Sec. V-A (Table V at 1 V; Fig. 17 at 0.82 V)

# Eyeriss JSSC 2017 Table V "Zeros in Ifmaps" (AlexNet CONV1-5, batch 4, at 1 V)
EYERISS_ALEXNET_ZEROS: tuple[float, ...] = (0.0001, 0.387, 0.725, 0.793, 0.776)
EYERISS_PE_GATING_SAVING = 0.45  # JSSC 2017 Sec. IV-C: data gating "can save the PE power consumption by 45%"

# Eyeriss pad ring per off-chip data bit: (4.0^2 - 3.5^2) mm^2 / 64 bits (JSSC 2017 Table IV die and core)
EYERISS_IO_MM2_PER_BIT = (4.0 * 4.0 - 3.5 * 3.5) / 64.0   # 0.0586 mm^2; used as an assumed PHY density


# CACTI 7, 40 nm (accelergy-cacti-plug-in cacti/out.csv): (bytes, banks, width bits) -> (area mm^2, leakage mW)
CACTI_40NM_SRAM: Mapping[tuple[int, int, int], tuple[float, float]] = {
    (448, 1, 16): (0.00260362, 0.24371),
    (8192, 1, 64): (0.0426968, 3.91289),
    (102400, 1, 64): (0.506807, 40.3031),
    (102400, 16, 64): (0.657405, 16 * 3.82583),   # leakage column is per bank
    (102400, 32, 64): (0.774168, 32 * 2.42353),
}


def cacti_sram(size_bytes: int, banks: int = 1, width_bits: int = 64,
               node_nm: float = 40.0) -> dict[str, float]:
    """A :data:`CACTI_40NM_SRAM` row scaled to ``node_nm``: ``{"mm2", "leak_mw", "mm2_per_kb",
    "leak_mw_per_kb"}``. ``ValueError`` naming the rows that exist when there is no such row."""
    row = CACTI_40NM_SRAM.get((size_bytes, banks, width_bits))
    if row is None:
        raise ValueError(f"no CACTI row for {size_bytes} B, {banks} banks, {width_bits} bit; rows: "
                         + ", ".join(f"{b} B/{n} banks/{w} bit" for b, n, w in CACTI_40NM_SRAM))
    mm2 = row[0] * (float(node_nm) / 40.0) ** 2
    kb = size_bytes / 1024
    return {"mm2": mm2, "leak_mw": row[1], "mm2_per_kb": mm2 / kb, "leak_mw_per_kb": row[1] / kb}


def _solve_alpha_power(points: tuple[tuple[float, float], ...]) -> tuple[float, float, float]:
    """``(k, vt, alpha)`` of ``f = k (V - vt)^alpha / V`` through three points, by bisection on ``vt``."""
    (v1, f1), (v2, f2), (v3, f3) = points

    def alpha(vt: float) -> float:
        return math.log(f2 * v2 / (f1 * v1)) / math.log((v2 - vt) / (v1 - vt))

    def miss(vt: float) -> float:
        return f2 * ((v3 - vt) / (v2 - vt)) ** alpha(vt) * v2 / v3 - f3

    lo, hi = 0.0, v1 - 1e-6
    if miss(lo) * miss(hi) > 0:
        raise ValueError(f"V-f points {points} admit no alpha-power fit with 0 <= V_t < {v1} V")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if miss(lo) * miss(mid) <= 0:
            hi = mid
        else:
            lo = mid
    vt = 0.5 * (lo + hi)
    a = alpha(vt)
    return f2 * v2 / (v2 - vt) ** a, vt, a


@dataclass(frozen=True)
class VFCurve:
    """Highest clock against core supply: the alpha-power law fitted exactly through three points.

    Immutable. Voltages outside the points' range are refused (the fit is not extrapolated).

    Attributes:
        points: three ``(V, f_max MHz)`` pairs with V and f strictly increasing.
        name: a label for messages.
        k, vt, alpha: the fitted law ``f_max = k (V - vt)^alpha / V`` (set on construction).
    """

    points: tuple[tuple[float, float], ...] = EYERISS_VF_POINTS
    name: str = "Eyeriss 65 nm"
    k: float = field(init=False)
    vt: float = field(init=False)
    alpha: float = field(init=False)

    def __post_init__(self) -> None:
        pts = tuple((float(v), float(f)) for v, f in self.points)
        if len(pts) != 3 or any(b[0] <= a[0] or b[1] <= a[1] for a, b in zip(pts, pts[1:])) \
                or any(not (math.isfinite(v) and math.isfinite(f) and v > 0 and f > 0) for v, f in pts):
            raise ValueError(f"V-f curve needs three (V, MHz) points, both increasing, got {self.points!r}")
        k, vt, a = _solve_alpha_power(pts)
        object.__setattr__(self, "points", pts)
        object.__setattr__(self, "k", k)
        object.__setattr__(self, "vt", vt)
        object.__setattr__(self, "alpha", a)

    @property
    def v_range(self) -> tuple[float, float]:
        """The lowest and highest supply the curve covers, V."""
        return self.points[0][0], self.points[-1][0]

    def check_voltage(self, voltage: float) -> float:
        """``voltage`` as a float; ``ValueError`` (one line) if not a number inside :attr:`v_range`."""
        ok = isinstance(voltage, (int, float)) and not isinstance(voltage, bool) and math.isfinite(voltage)
        lo, hi = self.v_range
        if not ok or not lo <= float(voltage) <= hi:
            raise ValueError(f"voltage must be a number in [{lo:g}, {hi:g}] V (the {self.name} V-f range), "
                             f"got {voltage!r}")
        return float(voltage)

    def f_max_mhz(self, voltage: float) -> float:
        """Highest clock (MHz) at ``voltage``, rounded to 1e-9 MHz (so 1.17 V reads 250, not
        249.99999999999997, in design keys); ``ValueError`` outside :attr:`v_range`."""
        v = self.check_voltage(voltage)
        return round(self.k * (v - self.vt) ** self.alpha / v, 9)

    def v_min(self, clock_mhz: float) -> float:
        """Lowest supply (V) whose :meth:`f_max_mhz` reaches ``clock_mhz``; ``ValueError`` if none does."""
        lo, hi = self.v_range
        if not (isinstance(clock_mhz, (int, float)) and math.isfinite(clock_mhz) and clock_mhz > 0):
            raise ValueError(f"clock_mhz must be a positive number, got {clock_mhz!r}")
        if clock_mhz > self.f_max_mhz(hi) * (1 + 1e-12):
            raise ValueError(f"clock_mhz {clock_mhz:g} exceeds the {self.name} V-f curve's highest clock "
                             f"{self.f_max_mhz(hi):.1f} MHz at {hi:g} V")
        if clock_mhz <= self.f_max_mhz(lo):
            return lo
        for _ in range(100):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if self.f_max_mhz(mid) < clock_mhz else (lo, mid)
        return hi

    def operating_point(self, voltage: float) -> tuple[float, float]:
        """``(voltage, f_max_mhz(voltage))``: the fastest clock a supply allows."""
        return float(voltage), self.f_max_mhz(voltage)


EYERISS_VF = VFCurve()


def dynamic_energy_scale(voltage: float | None, nominal: float = NOMINAL_V) -> float:
    """Factor on dynamic energy per operation at ``voltage``: ``(V / V_nom)^2``; 1.0 for ``None``."""
    return 1.0 if voltage is None else (float(voltage) / nominal) ** 2


def leakage_scale(voltage: float | None, nominal: float = NOMINAL_V) -> float:
    """Factor on leakage power at ``voltage``: ``V / V_nom`` (**assumed**: constant leakage current)."""
    return 1.0 if voltage is None else float(voltage) / nominal


@dataclass(frozen=True)
class DramTech:
    """One DRAM technology, per channel (see the module docstring for each number's source).

    Attributes:
        name: the technology's name, lower case.
        channel_bits: data width of one channel, bits.
        gbps_per_channel: peak bandwidth of one channel, GB/s (1e9 bytes/s).
        pj_per_bit: access energy per bit read or written, pJ.
        phy_mm2: on-chip PHY area per channel, mm^2 (**assumed**).
        standby_mw: standby power of one channel (PHY + devices), mW (**assumed**).
    """

    name: str
    channel_bits: int
    gbps_per_channel: float
    pj_per_bit: float
    phy_mm2: float
    standby_mw: float

    def word_pj(self, bits: int) -> float:
        """Energy of moving one ``bits``-wide word to or from DRAM, pJ."""
        return self.pj_per_bit * bits


DRAM_TECHS: Mapping[str, DramTech] = {
    # LPDDR4 (JEDEC JESD209-4): x16 channels; 3200 MT/s x 16 bit = 6.4 GB/s
    "lpddr4": DramTech("lpddr4", 16, 6.4, 8.0, 16 * EYERISS_IO_MM2_PER_BIT, 13.0),
    # DDR3 (JESD79-3F), DDR3-1600 on a 64-bit channel: 12.8 GB/s
    "ddr3": DramTech("ddr3", 64, 12.8, 70.0, 64 * EYERISS_IO_MM2_PER_BIT, 420.0),
    # GDDR5 (JESD212C): x32 device at 8 Gb/s per pin = 32 GB/s
    "gddr5": DramTech("gddr5", 32, 32.0, 14.0, 32 * EYERISS_IO_MM2_PER_BIT, 300.0),
    # HBM2 (JESD235A): 128-bit channel at 2 Gb/s per pin = 32 GB/s (8 channels = 256 GB/s per stack)
    "hbm2": DramTech("hbm2", 128, 32.0, 3.9, 128 * EYERISS_IO_MM2_PER_BIT / 10, 24.0),
}


def dram_tech(name: str) -> DramTech:
    """The :class:`DramTech` called ``name`` (case-insensitive); ``ValueError`` listing the choices."""
    tech = DRAM_TECHS.get(str(name).lower()) if isinstance(name, str) else None
    if tech is None:
        raise ValueError(f"dram_tech must be one of {', '.join(DRAM_TECHS)}, got {name!r}")
    return tech


def channel_bytes_per_cycle(tech: DramTech, channels: int, clock_mhz: float) -> float:
    """DRAM bandwidth of ``channels`` whole channels in bytes per core cycle at ``clock_mhz``."""
    if isinstance(channels, bool) or not isinstance(channels, int) or channels < 1:
        raise ValueError(f"dram_channels must be a positive integer, got {channels!r}")
    return channels * tech.gbps_per_channel * 1e3 / float(clock_mhz)


def zero_fractions(zero_frac: Any, n: int) -> list[float]:
    """``zero_frac`` (``None``, a number, or one number per layer) as ``n`` floats in [0, 1].

    ``ValueError`` (one line) for a wrong length or a value outside [0, 1].
    """
    if zero_frac is None:
        return [0.0] * n
    if isinstance(zero_frac, (int, float)) and not isinstance(zero_frac, bool):
        vals = [float(zero_frac)] * n
    else:
        try:
            vals = [float(v) for v in zero_frac]
        except (TypeError, ValueError):
            raise ValueError(f"zero_frac must be a number or one number per layer, got {zero_frac!r}") from None
        if len(vals) != n:
            raise ValueError(f"zero_frac has {len(vals)} values for {n} layers; give one per layer")
    bad = [v for v in vals if not (math.isfinite(v) and 0.0 <= v <= 1.0)]
    if bad:
        raise ValueError(f"zero_frac values must be in [0, 1], got {bad[0]!r}")
    return vals


__all__ = ["CACTI_40NM_SRAM", "DRAM_TECHS", "EYERISS_ALEXNET_ZEROS", "EYERISS_GMACS_PER_W",
           "EYERISS_PE_GATING_SAVING",
           "EYERISS_VF", "EYERISS_VF_POINTS", "NOMINAL_V", "DramTech", "VFCurve", "cacti_sram",
           "channel_bytes_per_cycle",
           "dram_tech", "dynamic_energy_scale", "leakage_scale", "zero_fractions"]
