"""Analytical per-layer cost of an accelerator: cycles, memory traffic, latency, energy, area.

Vectorised with numpy over the layers of a network (one :class:`CostModel` per design).

Compute cycles: :func:`hw_space.systolic.compute_cycles` (SCALE-Sim-exact) for ``ws``/``os``/``is``,
:func:`hw_space.rowstationary.rs_compute_cycles` for ``rs``. SCALE-Sim has no batch: a systolic
batch of ``N`` is ``N`` back-to-back runs; RS folds the batch into its passes (as Eyeriss does).

Memory traffic, in words of ``precision_bits`` (partial sums too), per level:

* **DRAM <-> global buffer** from a tiling that fits the buffer (capacity ``Bw`` words, half of it
  for the resident tile). If weights + ifmap + ofmap of a group fit, each is moved once. Otherwise the
  cheapest of four schedules (the stationary operand is reused, the others re-fetched per tile):
  outputs chunked over filters (``O + W + n_o * I``) or over pixels (``O + I + n_o * W``), both with
  psums accumulated in the buffer, ``n_o = ceil(O / (Bw/2))``; weights resident
  (``W + n_w * I + O * (2 n_c - 1)``, ``n_c`` = channel splits when one filter exceeds ``Bw/2``,
  spilling psums); ifmap resident (``I + n_i * W + O * (2 n_c - 1)``, ``n_c`` = channel splits when
  one output row's input strip exceeds ``Bw/2``). Halo re-reads are ignored.
* **global buffer <-> array (NoC)**: systolic, as SCALE-Sim's SRAM demand (operand matrices,
  im2col-expanded): WS ``K N + px K cf + px N (2 rf - 1)``, OS ``px K cf + K N rf + px N``,
  IS ``K px + K N cf + px N (2 rf - 1)`` (``rf``/``cf`` row/column folds; psums of a row fold are
  read back and re-written). RS (Eyeriss): weights ``W * e_folds`` (multicast along a set row),
  ifmap ``I * r_folds * ceil(M / (p * sets))`` with ``p`` filters interleaved per PE as the RF allows
  (``(rf_words - S) // (S + 1)``; JSSC 2017 Sec. III-C), psums ``O * (2 r_folds - 1)``.
* **inter-PE (array)**: systolic 2 hops per MAC (the two moving operands); RS ``R - 1`` vertical
  psum hops per output row-sum.
* **RF**: accesses per MAC: WS 1 (weight), IS 1 (ifmap), OS 2 (psum read + write), RS 4 (weight,
  ifmap, psum read + write; ISCA 2016 Sec. V).

Memory-bound steps (``pool``/``eltwise`` layers, :mod:`hw_space.workload`) run on a vector unit
beside the array, one lane per array column: ``ops / cols`` compute cycles (``ops`` = outputs x
window for a pool, outputs x (inputs - 1), at least outputs, for an element-wise op); they read
their inputs from DRAM through the global buffer and write their output back (DRAM words = NoC
words = inputs + output), no RF, no MACs (``macs`` 0); their ALU ops are charged at the MAC energy
(an upper bound: an add or compare costs less than a multiply-add).

Latency: ``total_cycles = max(compute, dram_bytes / dram_bw, noc_bytes / noc_bw)`` (perfect
double buffering: the slowest stage bounds); ``latency_ms = total_cycles / clock``.
SCALE-Sim memory system (issue 19, :mod:`hw_space.traffic`): per-layer SRAM/DRAM words per operand
and ``stall_cycles`` as SCALE-Sim counts them, for ``ws``/``os``/``is``; when the spec sets
``sram_kb`` and ``bandwidth_words`` (USER mode) the stalls add to the compute cycles inside the max
above (``compute + stalls``); without them there are no stalls and nothing changes.
Energy (µJ): ``Σ accesses × energy per access`` (DRAM: each word once at DRAM; global buffer:
DRAM fills + NoC reads/writes; NoC level: NoC words + inter-PE hops; RF) ``+ MACs × MAC energy +
leakage × area × time``, from :class:`hw_space.energy.EnergyTable`. Area: PEs + RF + global buffer.

Physical costs (issue 19, :mod:`hw_space.physical`; all off by default): a spec ``voltage`` scales
on-chip dynamic energy (global buffer, NoC, RF, MAC) by ``(V / 1.0 V)^2`` and leakage by ``V / 1.0 V``
(the clock is checked against ``f_max(V)`` by the spec); ``dram_tech`` + ``dram_channels`` set the
DRAM bandwidth (whole channels), its energy per bit, a PHY area per channel and a standby power per
channel (energy part ``phy``); ``zero_frac`` gates that fraction of MACs (MAC + one RF read each).

Example:
    >>> from hw_space.spec import AcceleratorSpec
    >>> from hw_space.workload import resnet18
    >>> spec = AcceleratorSpec(rows=32, cols=32, rf_bytes=64, gbuf_bytes=256 * 1024, dataflow="ws",
    ...                        dram_bw=16.0, noc_bw=64.0, clock_mhz=500.0, precision_bits=8)
    >>> net = CostModel(spec).network(resnet18())
    >>> net["energy_uj"] > 0 and net["latency_ms"] > 0
    True
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from hw_space import physical
from hw_space.energy import EnergyTable
from hw_space.mapper import BufferMapper
from hw_space.rowstationary import rs_mapping
from hw_space.spec import AcceleratorSpec
from hw_space.systolic import LayersLike, compute_cycles, gemm_dims, layer_arrays
from hw_space.traffic import spec_traffic
from hw_space.workload import MEMORY_KINDS

RF_ACCESSES_PER_MAC = {"ws": 1, "is": 1, "os": 2, "rs": 4}
ENERGY_PARTS = ("dram", "gbuf", "noc", "rf", "mac", "leak", "phy")  # phy: DRAM channels' standby (issue 19)


def _cdiv(a: Any, b: Any) -> np.ndarray:
    return -(-np.asarray(a, dtype=np.int64) // np.asarray(b, dtype=np.int64))


def _names(layers: LayersLike, n: int) -> list[str]:
    if isinstance(layers, Mapping):
        return [str(x) for x in layers.get("name", [f"layer{i}" for i in range(n)])]
    return [layer.name for layer in layers]


def _column(layers: LayersLike, field: str, default: Any, n: int) -> np.ndarray:
    if isinstance(layers, Mapping):
        return np.asarray(layers.get(field, [default] * n))
    return np.asarray([getattr(layer, field) for layer in layers])


class CostModel:
    """Cost of layers on one accelerator. Stateless after construction; safe to share.

    Args:
        spec: the accelerator.
        energy: the energy/area table (default :class:`EnergyTable`'s documented values).
        mapper: (issue 19) a :class:`hw_space.mapper.BufferMapper` to search each layer's loop
            order and tiling of the buffer level; its DRAM words replace the fixed schedules' when
            fewer (never more). None (default): the fixed schedules only.
        traffic: compute SCALE-Sim's per-operand traffic and stalls (:mod:`hw_space.traffic`);
            default: only when ``spec.sram_kb`` is set (else those keys are zeros and
            ``traffic_modelled`` is ``False``).
    """

    def __init__(self, spec: AcceleratorSpec, energy: EnergyTable | None = None,
                 mapper: BufferMapper | None = None, traffic: bool | None = None) -> None:
        self.spec = spec
        self.energy = energy if energy is not None else EnergyTable()
        self.mapper = mapper
        # issue 19: SCALE-Sim traffic per operand; None = only when the spec sets sram_kb (keeps the
        # search loops' cost-model calls as fast as before), True = always (hwnas hw cost)
        self.traffic = spec.sram_kb is not None if traffic is None else bool(traffic)

    # ------------------------------------------------------------------ area
    def area_mm2(self) -> dict[str, float]:
        """Area breakdown ``{"pe", "rf", "gbuf", "phy", "total"}`` in mm^2 (``phy``: DRAM channel PHYs,
        0 without ``dram_tech``)."""
        s, e = self.spec, self.energy
        pe = s.num_pes * e.pe_mm2(s.precision_bits)
        rf = s.num_pes * s.rf_bytes / 1024 * e.rf_mm2_per_kb
        gb = s.gbuf_bytes / 1024 * e.sram_mm2_per_kb
        phy = 0.0 if s.dram_tech is None else (s.dram_channels or 0) * physical.dram_tech(s.dram_tech).phy_mm2
        return {"pe": pe, "rf": rf, "gbuf": gb, "phy": phy, "total": pe + rf + gb + phy}

    # ------------------------------------------------------------------ per layer
    def layers(self, layers: LayersLike, batch: int = 1, zero_frac: Any = None) -> dict[str, Any]:
        """Per-layer costs: a dict of equal-length numpy arrays (plus ``name``, a list).

        Keys: ``macs, compute_cycles, dram_cycles, noc_cycles, total_cycles, latency_ms,
        utilization`` (MACs / (total cycles * PEs)), ``dram_bytes, noc_bytes, gbuf_accesses,
        array_hops, rf_accesses`` (words), ``energy_<part>_uj`` for parts dram, gbuf, noc, rf, mac,
        leak, phy, and ``energy_uj`` (their sum), ``power_mw``.

        ``zero_frac`` (a number or one per layer, in [0, 1]; default none) is the fraction of ifmap
        zeros that the PEs gate (:mod:`hw_space.physical`): that fraction of the MACs saves its MAC
        energy and one RF read, times ``EnergyTable.gate_eff``. Pass it only for hardware that gates.
        And (issue 19,
        :func:`hw_space.traffic.spec_traffic`) ``sram_ifmap_reads, sram_filter_reads,
        sram_ofmap_writes, dram_ifmap_reads, dram_filter_reads, dram_ofmap_writes`` (words, as
        SCALE-Sim counts them), ``stall_cycles`` and ``traffic_modelled`` (bool; ``False`` for ``rs``,
        memory-bound steps and when the model was built without ``traffic``; their entries are 0).

        Raises:
            ValueError: ``batch`` is not a positive integer, or ``gbuf_bytes`` cannot hold one
                minimal tile (one filter row + one ifmap row + one psum row) of some layer; the
                message names ``gbuf_bytes`` and the layer.
        """
        if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)) or batch < 1:
            raise ValueError(f"batch must be a positive integer, got {batch!r}")
        s, en = self.spec, self.energy
        a = layer_arrays(layers)
        names = _names(layers, len(a["ifmap_h"]))
        nb = int(batch)
        wb = s.precision_bits // 8
        g = a["groups"]
        big_r, big_s = a["filter_h"], a["filter_w"]
        hin, win = a["ifmap_h"], a["ifmap_w"]
        px, k, nf, _ = gemm_dims(a)
        f_cols = _cdiv(win - big_s + a["stride"], a["stride"])
        ch = a["channels"] // g
        macs = g * nb * px * k * nf
        mem = np.isin(_column(layers, "kind", "conv", len(names)), MEMORY_KINDS)

        # validation: the smallest tile of any schedule
        tile = (big_s + win + f_cols) * wb
        bad = np.nonzero((tile > s.gbuf_bytes) & ~mem)[0]
        if bad.size:
            i = int(bad[0])
            raise ValueError(f"gbuf_bytes ({s.gbuf_bytes}) is smaller than one minimal tile of layer "
                             f"{names[i]} ({int(tile[i])} bytes: one filter row + one ifmap row + "
                             "one psum row)")

        # ---- compute cycles and NoC words
        df = s.dataflow
        if df == "rs":
            mp = rs_mapping(a, s.rows, s.cols, nb)
            comp = mp["cycles"]
            w_el, i_el, o_el = k * nf, nb * ch * hin * win, nb * px * nf
            rf_words = max(s.rf_bytes // wb, 1)
            p = np.clip((rf_words - big_s) // (big_s + 1), 1, None)
            i_passes = _cdiv(nf, p * mp["sets_parallel"])
            noc = g * (w_el * mp["e_folds"] + i_el * mp["r_folds"] * i_passes
                       + o_el * (2 * mp["r_folds"] - 1))
            hops = g * nb * nf * ch * px * (big_r - 1)  # one vertical hop per filter row but the last
        else:
            per_img = np.stack([g, a["channels"], a["num_filter"]])
            rep = {**a, "groups": per_img[0] * nb, "channels": per_img[1] * nb,
                   "num_filter": per_img[2] * nb}
            comp = compute_cycles(rep, s.rows, s.cols, df)
            if df == "ws":
                rfo, cfo = _cdiv(k, s.rows), _cdiv(nf, s.cols)
                noc_g = k * nf + px * k * cfo + px * nf * (2 * rfo - 1)
            elif df == "os":
                rfo, cfo = _cdiv(px, s.rows), _cdiv(nf, s.cols)
                noc_g = px * k * cfo + k * nf * rfo + px * nf
            else:
                rfo, cfo = _cdiv(k, s.rows), _cdiv(px, s.cols)
                noc_g = k * px + k * nf * cfo + px * nf * (2 * rfo - 1)
            noc = g * nb * noc_g
            hops = 2 * macs

        # ---- DRAM words from the buffer tiling (per group, then x groups)
        w_g, i_g, o_g = k * nf, nb * ch * hin * win, nb * px * nf
        cap = s.gbuf_bytes // wb
        half = max(cap // 2, 1)
        n_o = _cdiv(o_g, half)
        n_w = _cdiv(w_g, half)
        n_i = _cdiv(i_g, half)
        nc_w = _cdiv(big_r * big_s * ch, half)
        nc_i = _cdiv(big_r * win * ch, half)
        cands = np.stack([o_g + w_g + n_o * i_g, o_g + i_g + n_o * w_g,
                          w_g + n_w * i_g + o_g * (2 * nc_w - 1),
                          i_g + n_i * w_g + o_g * (2 * nc_i - 1)])
        fits = (w_g + i_g + o_g) <= cap
        dram_g = np.where(fits, w_g + i_g + o_g, cands.min(axis=0))
        if self.mapper is not None:  # issue 19: per-layer loop order + tiling search (hw_space.mapper)
            dram_g = np.minimum(dram_g, self.mapper.dram_words(a, nb, cap))
        dram = g * dram_g

        # ---- memory-bound steps: stream inputs in and the output out, on a cols-lane vector unit
        if mem.any():
            n_in = _column(layers, "inputs", 1, len(names)).astype(np.int64)
            is_pool = _column(layers, "kind", "conv", len(names)) == "pool"
            out_el = nb * a["channels"] * px
            stream = nb * n_in * a["channels"] * hin * win + out_el
            ops = np.where(is_pool, out_el * big_r * big_s, out_el * np.maximum(n_in - 1, 1))
            comp = np.where(mem, _cdiv(ops, s.cols), comp)
            noc = np.where(mem, stream, noc)
            dram = np.where(mem, stream, dram)
            hops = np.where(mem, 0, hops)
            vec_ops = np.where(mem, ops, 0)
            macs = np.where(mem, 0, macs)
        else:
            vec_ops = np.zeros_like(macs)

        dram_bytes = dram * wb
        noc_bytes = noc * wb
        dram_cyc = np.ceil(dram_bytes / s.dram_bytes_per_cycle).astype(np.int64)
        noc_cyc = np.ceil(noc_bytes / s.noc_bw).astype(np.int64)
        # ---- issue 19: SCALE-Sim memory system (per-operand traffic; USER-mode stalls add to compute)
        traffic = spec_traffic(s, a, nb, skip=mem if self.traffic else None, enabled=self.traffic)
        total = np.maximum(np.maximum(comp + traffic["stall_cycles"], dram_cyc), noc_cyc)
        latency_ms = total / (s.clock_mhz * 1e3)

        # ---- energy (pJ -> uJ)
        bits = s.precision_bits
        gbuf_acc = dram + noc
        rf_acc = RF_ACCESSES_PER_MAC[df] * macs  # 0 for memory-bound steps
        area = self.area_mm2()["total"]
        # --- issue 19 physical costs (hw_space.physical): V^2 dynamic energy, leakage x V, DRAM
        # technology pJ/bit and channel standby, zero gating of MAC + one RF read per gated MAC
        dyn, leak_v = physical.dynamic_energy_scale(s.voltage), physical.leakage_scale(s.voltage)
        tech = None if s.dram_tech is None else physical.dram_tech(s.dram_tech)
        dram_pj = en.access_pj("dram", bits) if tech is None else tech.word_pj(bits)
        standby_mw = 0.0 if tech is None else (s.dram_channels or 0) * tech.standby_mw
        gated = en.gate_eff * np.asarray(physical.zero_fractions(zero_frac, len(names))) * macs
        parts = {
            "dram": dram * dram_pj * 1e-6,
            "gbuf": gbuf_acc * en.access_pj("gbuf", bits) * dyn * 1e-6,
            "noc": (noc + hops) * en.access_pj("noc", bits) * dyn * 1e-6,
            "rf": (rf_acc - gated) * en.access_pj("rf", bits) * dyn * 1e-6,
            "mac": (macs - gated + vec_ops) * en.mac_pj(bits) * dyn * 1e-6,
            "leak": en.leak_mw_per_mm2 * area * leak_v * latency_ms,  # mW x ms = uJ
            "phy": standby_mw * latency_ms,
        }
        energy = sum(parts.values())
        out: dict[str, Any] = {
            "name": names, "macs": macs.astype(np.int64), "compute_cycles": comp.astype(np.int64),
            "dram_cycles": dram_cyc, "noc_cycles": noc_cyc, "total_cycles": total.astype(np.int64),
            "latency_ms": latency_ms, "utilization": macs / np.maximum(total * s.num_pes, 1),
            "dram_bytes": dram_bytes.astype(np.int64), "noc_bytes": noc_bytes.astype(np.int64),
            "gbuf_accesses": gbuf_acc.astype(np.int64), "array_hops": hops.astype(np.int64),
            "rf_accesses": rf_acc.astype(np.int64),
            **traffic,  # issue 19: sram_*/dram_* words per operand, stall_cycles, traffic_modelled
        }
        for key, val in parts.items():
            out[f"energy_{key}_uj"] = np.asarray(val, dtype=np.float64)
        out["energy_uj"] = np.asarray(energy, dtype=np.float64)
        out["power_mw"] = out["energy_uj"] / latency_ms
        return out

    # ------------------------------------------------------------------ network
    def network(self, layers: LayersLike, batch: int = 1,
                per_layer: Mapping[str, Any] | None = None, zero_frac: Any = None) -> dict[str, Any]:
        """Network totals (layers run one after another) as plain Python numbers.

        Keys: ``layers`` (count), ``macs, compute_cycles, total_cycles, latency_ms, energy_uj``,
        ``energy_breakdown_uj`` (per part; sums to ``energy_uj``), ``utilization``, ``power_mw``,
        ``dram_bytes``, ``area_mm2`` and ``area_breakdown_mm2``, ``edp_uj_ms`` (energy x latency).
        Pass ``per_layer`` (the result of :meth:`layers`) to avoid recomputing it; ``zero_frac`` as
        for :meth:`layers`.
        """
        d = per_layer if per_layer is not None else self.layers(layers, batch, zero_frac)
        area = self.area_mm2()
        lat = float(np.sum(d["latency_ms"]))
        energy = float(np.sum(d["energy_uj"]))
        total = int(np.sum(d["total_cycles"]))
        return {
            "layers": len(d["name"]), "batch": int(batch), "macs": int(np.sum(d["macs"])),
            "compute_cycles": int(np.sum(d["compute_cycles"])), "total_cycles": total,
            "latency_ms": lat, "energy_uj": energy,
            "energy_breakdown_uj": {p: float(np.sum(d[f"energy_{p}_uj"])) for p in ENERGY_PARTS},
            "utilization": float(np.sum(d["macs"])) / (total * self.spec.num_pes) if total else 0.0,
            "power_mw": energy / lat if lat else 0.0, "dram_bytes": int(np.sum(d["dram_bytes"])),
            "area_mm2": area["total"], "area_breakdown_mm2": {k: area[k] for k in ("pe", "rf", "gbuf", "phy")},
            "edp_uj_ms": energy * lat,
        }


__all__ = ["ENERGY_PARTS", "RF_ACCESSES_PER_MAC", "CostModel"]
