"""Energy per access, leakage and area constants of the cost model, with their sources (numpy only).

Relative access energies (per 16-bit word, relative to one 16-bit MAC = 1) are Eyeriss's, "extracted
from a commercial 65 nm process": DRAM 200, global buffer 6, array (inter-PE / NoC) 2, RF 1
(Y.-H. Chen, J. Emer, V. Sze, ISCA 2016, Fig. 1; also V. Sze et al., Proc. IEEE 105(12), 2017, Fig. 22).

Absolute scale, derived (not copied) from M. Horowitz, "Computing's energy problem", ISSCC 2014,
45 nm, 0.9 V: integer multiply 0.2 pJ (8 b) and 3.1 pJ (32 b), integer add 0.03 pJ (8 b) and
0.1 pJ (32 b). A 16-bit multiply is taken as quadratic in width, 0.2 * 4 = 0.8 pJ, plus a ~0.05 pJ
accumulate: 0.85 pJ; an 8-bit MAC 0.2 + 0.05 = 0.25 pJ. Scaled to 65 nm at 1.0 V (Eyeriss's core
supply, JSSC 2017) by ``(65/45) * (1.0/0.9)**2 = 1.78``: **16-bit MAC 1.5 pJ, 8-bit MAC 0.45 pJ**.
Check: DRAM then costs 200 * 1.5 = 300 pJ per 16-bit word (19 pJ/bit), inside Horowitz's
1.3-2.6 nJ per 64-bit DRAM access (20-41 pJ/bit at 45 nm). Memory and NoC accesses scale with the
bits moved, so an 8-bit word costs half a 16-bit one (an assumption).

Leakage: **assumed** 1 mW per mm^2 (no published Eyeriss figure; order of a 65 nm low-power process);
set ``leak_mw_per_mm2=0`` to drop it. A CACTI 7 run at 40 nm (:data:`hw_space.physical.CACTI_40NM_SRAM`)
gives 0.40-0.78 mW per KB of SRAM (~80 mW/mm^2 for 100 KB in one bank); it is not taken as the
default because its cell type is not recorded and Eyeriss's 65 nm LP process leaks far less than a
40 nm high-performance one.

Area, 65 nm: Eyeriss's core is 3.5 x 3.5 = 12.25 mm^2 for 168 PEs (0.5 KB scratch pads each:
224 + 12 + 24 16-bit words) and a 108 KB global buffer (JSSC 2017, Table IV). Its split is the
paper's own (JSSC 2017 Sec. V on Fig. 15): "on-chip storage, including the GLB and all spads, takes
two-thirds of the total area", and the spads are "2.5x larger than" the GLB. Storage is then
8.17 mm^2: GLB 2.33 mm^2 (**0.0216 mm^2/KB**) and spads 5.83 mm^2 (**0.0694 mm^2/KB** over
168 x 0.5 KB). The remaining third over 168 PEs is the 16-bit PE logic (MAC, control, NoC share,
clock tree) **0.0243 mm^2**. The paper's words are rounded ("two-thirds", "nearly half"). An 8-bit PE
is assumed to be half of a 16-bit one. Cross-check: CACTI 7 at 40 nm gives 0.774 mm^2 for 100 KB in
32 banks (:data:`hw_space.physical.CACTI_40NM_SRAM`), x (65/40)^2 = 2.04 mm^2 against the 2.16 mm^2
that 0.0216 mm^2/KB gives for 100 KB: 6 % apart. So the Eyeriss spec reproduces 12.25 mm^2 by
construction; other sizes are an extrapolation with these per-KB densities.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

LEVELS: tuple[str, ...] = ("dram", "gbuf", "noc", "rf")

EYERISS_CORE_MM2 = 12.25      # JSSC 2017: 3.5 mm x 3.5 mm core, 65 nm
EYERISS_PES = 168             # 12 x 14
EYERISS_GBUF_KB = 108.0
EYERISS_RF_KB_PER_PE = 0.5    # 224 + 12 + 24 16-bit spad words = 520 B
EYERISS_STORAGE_MM2 = EYERISS_CORE_MM2 * 2 / 3   # JSSC 2017 Sec. V: storage "two-thirds of the total area"
EYERISS_GBUF_MM2 = EYERISS_STORAGE_MM2 / 3.5            # spads "2.5x larger than that of the GLB": 2.33 mm^2
SRAM_MM2_PER_KB = round(EYERISS_GBUF_MM2 / EYERISS_GBUF_KB, 5)                              # 0.0216
RF_MM2_PER_KB = round(2.5 * EYERISS_GBUF_MM2 / (EYERISS_PES * EYERISS_RF_KB_PER_PE), 5)    # 0.06944
PE16_MM2 = round((EYERISS_CORE_MM2 - EYERISS_GBUF_KB * SRAM_MM2_PER_KB
                  - EYERISS_PES * EYERISS_RF_KB_PER_PE * RF_MM2_PER_KB) / EYERISS_PES, 5)  # 0.02431


@dataclass(frozen=True)
class EnergyTable:
    """Immutable energy/area constants (see the module docstring for every source and assumption).

    Attributes:
        mac_pj_16, mac_pj_8: energy of one MAC at 16 / 8 bit, pJ.
        dram_rel, gbuf_rel, noc_rel, rf_rel: energy of one 16-bit word access at each level, in
            units of ``mac_pj_16``.
        leak_mw_per_mm2: leakage power per mm^2 of area.
        pe_mm2_16, pe_mm2_8: area of one PE's logic (without its RF), mm^2.
        rf_mm2_per_kb, sram_mm2_per_kb: area of register file / global-buffer SRAM per KB, mm^2.
        gate_eff: fraction of a zero-gated MAC's energy (MAC + one RF read) that gating saves, in
            [0, 1]; **assumed** 1.0 (ideal gating). Used only where the cost model is given zero
            fractions (:mod:`hw_space.physical`).
    """

    mac_pj_16: float = 1.5
    mac_pj_8: float = 0.45
    dram_rel: float = 200.0
    gbuf_rel: float = 6.0
    noc_rel: float = 2.0
    rf_rel: float = 1.0
    leak_mw_per_mm2: float = 1.0
    pe_mm2_16: float = PE16_MM2
    pe_mm2_8: float = PE16_MM2 / 2
    rf_mm2_per_kb: float = RF_MM2_PER_KB
    sram_mm2_per_kb: float = SRAM_MM2_PER_KB
    gate_eff: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            ok = isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0
            if not ok:
                raise ValueError(f"energy table {f.name} must be a finite number >= 0, got {v!r}")
            object.__setattr__(self, f.name, float(v))
        if self.gate_eff > 1:
            raise ValueError(f"energy table gate_eff must be in [0, 1], got {self.gate_eff!r}")

    @classmethod
    def from_dict(cls, overrides: Mapping[str, Any] | None = None) -> EnergyTable:
        """Defaults with ``overrides`` applied; unknown keys raise ``ValueError`` naming them."""
        overrides = dict(overrides or {})
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise ValueError(f"unknown energy table keys: {', '.join(map(str, unknown))}; "
                             f"allowed: {', '.join(names)}")
        return cls(**overrides)

    def to_dict(self) -> dict[str, float]:
        """All fields as a plain dict."""
        return dataclasses.asdict(self)

    def mac_pj(self, bits: int) -> float:
        """Energy of one MAC at ``bits`` (8 or 16), pJ."""
        return self._by_bits(bits, self.mac_pj_8, self.mac_pj_16)

    def access_pj(self, level: str, bits: int) -> float:
        """Energy of one ``bits``-wide word access at ``level`` (dram, gbuf, noc, rf), pJ."""
        if level not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}, got {level!r}")
        self._by_bits(bits, 0.0, 0.0)
        return getattr(self, f"{level}_rel") * self.mac_pj_16 * bits / 16.0

    def pe_mm2(self, bits: int) -> float:
        """Logic area of one PE at ``bits``, mm^2."""
        return self._by_bits(bits, self.pe_mm2_8, self.pe_mm2_16)

    @staticmethod
    def _by_bits(bits: int, v8: float, v16: float) -> float:
        if bits == 8:
            return v8
        if bits == 16:
            return v16
        raise ValueError(f"precision_bits must be 8 or 16, got {bits!r}")


__all__ = ["LEVELS", "EnergyTable"]
