"""Build ZigZag's inputs (workload, accelerator, mapping) from an hw_space spec and layers.

Pure Python: no ZigZag, no YAML library (ZigZag reads YAML, and JSON is YAML, so the dicts are
written with ``json``). ``bench/zigzag_compare.py`` runs ZigZag (``zigzag-dse`` on PyPI, in its own
virtual environment) on them; ``tests/test_zigzag_bridge.py`` checks the conversion.

What "the same hardware" means here (where the two models overlap):

* **Operational array**: ``rows x cols`` MAC units (ZigZag ``D1`` = rows, ``D2`` = cols), one MAC at
  :meth:`hw_space.energy.EnergyTable.mac_pj`. Systolic dataflows (``ws``/``os``/``is``) declare both
  dimensions systolic (ZigZag adds the drain cycles); ``rs`` (Eyeriss) uses none (multicast NoC).
* **Register file per PE** (``rf_bytes``), holding the operand the dataflow keeps in the PE, as
  hw_space's cost model charges RF accesses: ``ws`` weights, ``is`` inputs, ``os`` partial sums,
  ``rs`` all three, split as Eyeriss's scratch pads, 224 weight : 12 ifmap : 24 psum words
  (Y.-H. Chen et al., JSSC 52(1) 2017, Sec. IV-A: 224 x 16 b filter spad, 12 x 16 b ifmap spad,
  24 x 16 b psum spad), scaled to ``rf_bytes``. Operands not held in the PE stream from the global
  buffer (ZigZag ``served_dimensions: [D1, D2]``: one read is multicast over the array dimensions
  its data does not depend on, which is what a systolic pass-along or a multicast NoC achieves).
* **Global buffer**: one SRAM of ``gbuf_bytes`` shared by the three operands, as hw_space has it.
  Three ports of ``noc_bw`` bytes/cycle: a read port to the array (operands and psums read back), a
  write port from it (psums and outputs), and one to DRAM (fills and write-outs). hw_space bounds
  the array side's reads and writes together by ``noc_bw``; ZigZag serves one access per cycle on a
  ``read_write`` port whatever its width, so a psum read and a psum write every cycle (WS, psums
  in the buffer) would serialise there: a first run with one array-side port stalled ZigZag's WS
  layers ~2x for that reason alone (``stall_slack_comb_collect``: the port needed 2 cycles per
  1-cycle period). Separate read and write ports are the dual-ported buffer such arrays use.
* **DRAM**: one read/write port of ``dram_bw`` bytes/cycle (rounded to whole bits).
* **Energy per access**: hw_space charges per word of ``precision_bits``; ZigZag charges per access
  of a port's full width (``bandwidth_max`` bits, with ``bandwidth_min`` = one word, its formula
  ``ceil(words * bits / min_bw) * min_bw / max_bw`` accesses). So each ZigZag ``r_cost``/``w_cost``
  is hw_space's per-word energy x ``max_bw / bits``: the same words cost the same pJ in both, and
  energy differences come from the mapping and from what each model counts, not from constants.
  Reads and writes cost the same (hw_space has one figure per level).

Spatial unrolling (ZigZag mapping, per layer, named after the layer) follows hw_space's models:
``ws``: rows over the window (``C``, then ``FX``, ``FY``: hw_space folds ``K = R S C`` over the rows,
ZigZag can only unroll whole loop dims, so a 3-channel layer fills fewer rows), cols over filters
``K``; ``os``: rows over output pixels (``OX`` then ``OY``), cols over ``K``; ``is``: rows over the
window, cols over pixels; ``rs``: rows over filter rows ``FY`` then replicated sets over ``C``/``K``,
cols over output rows ``OY`` then ``K``/``C`` (hw_space's :func:`hw_space.rowstationary.rs_mapping`
heights ``h`` and widths ``e``). A depthwise layer (``groups == channels == num_filter``) uses
ZigZag's ``G`` dimension. hw_space runs the groups one after another: the systolic dataflows leave
``G`` temporal; for ``rs`` hw_space packs the replicated sets with the strips (``e_folds``) of one
group, which ZigZag can only express by unrolling ``G`` there (the same parallelism when a group has
at least as many strips as there are replicas; more for ZigZag otherwise, e.g. a 14x14 depthwise).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from hw_space.energy import EnergyTable
from hw_space.rowstationary import rs_mapping
from hw_space.spec import AcceleratorSpec
from hw_space.workload import Layer

#: The ZigZag release this bridge was written and checked against, and ``six``, which 3.9.1 imports
#: (``zigzag/parser/upgraded_validator.py``) without declaring it.
ZIGZAG_PIP: tuple[str, ...] = ("zigzag-dse==3.9.1", "six==1.17.0")

#: Eyeriss's scratch pads per PE, 16-bit words (JSSC 2017, Sec. IV-A): weights, ifmap, psums.
EYERISS_SPAD_WORDS: tuple[int, int, int] = (224, 12, 24)

CONV_EQUATION = "O[b][k][oy][ox]+=W[k][c][fy][fx]*I[b][c][iy][ix]"
DW_EQUATION = "O[b][g][oy][ox]+=W[g][fy][fx]*I[b][g][iy][ix]"
OPERAND_LINKS = {"O": "O", "W": "I2", "I": "I1"}
#: Memory operand (ZigZag name) held in the PE's register file, per dataflow.
RF_OPERANDS = {"ws": ("I2",), "is": ("I1",), "os": ("O",), "rs": ("I2", "I1", "O")}
#: ZigZag memory names per hw_space energy level (the RFs are named ``rf_<operand>``).
LEVEL_OF_MEMORY = {"rf_I1": "rf", "rf_I2": "rf", "rf_O": "rf", "gbuf": "gbuf", "dram": "dram"}


def is_depthwise(layer: Layer) -> bool:
    """Whether ``layer`` is a depthwise convolution (one input and one output channel per group)."""
    return layer.groups > 1 and layer.groups == layer.channels == layer.num_filter


def _check_layer(layer: Layer) -> None:
    if layer.memory_bound:
        raise ValueError(f"layer {layer.name}: {layer.kind} steps have no ZigZag counterpart here; "
                         "compare conv/gemm layers only")
    if layer.groups > 1 and not is_depthwise(layer):
        raise ValueError(f"layer {layer.name}: grouped convs other than depthwise are not converted "
                         f"(groups={layer.groups}, channels={layer.channels}, filters={layer.num_filter})")


def loop_sizes(layer: Layer) -> dict[str, int]:
    """ZigZag loop dims of ``layer``: ``B, K, C, OY, OX, FY, FX`` (or ``B, G, OY, OX, FY, FX`` for a
    depthwise layer). Output sizes are hw_space's (SCALE-Sim's ceil convention)."""
    _check_layer(layer)
    dims = {"B": 1}
    if is_depthwise(layer):
        dims["G"] = layer.groups
    else:
        dims["K"] = layer.num_filter
        dims["C"] = layer.channels
    dims.update(OY=layer.ofmap_h, OX=layer.ofmap_w, FY=layer.filter_h, FX=layer.filter_w)
    return dims


def workload(layers: Sequence[Layer], bits: int) -> list[dict[str, Any]]:
    """ZigZag's workload list: one independent layer per entry (each its own operand source).

    Every operand, partial sums included, is ``bits`` wide, as hw_space counts words.

    Raises:
        ValueError: a pool/eltwise step, a grouped non-depthwise conv, or duplicate layer names
            (ZigZag's mapping is looked up by name).
    """
    names = [lay.name for lay in layers]
    if len(set(names)) != len(names):
        raise ValueError(f"layer names must be unique for ZigZag's per-layer mapping, got {names}")
    out = []
    for i, lay in enumerate(layers):
        dims = loop_sizes(lay)
        s = lay.stride
        out.append({
            "id": i, "name": lay.name, "operator_type": "Conv",
            "equation": DW_EQUATION if is_depthwise(lay) else CONV_EQUATION,
            "dimension_relations": [f"ix={s}*ox+1*fx", f"iy={s}*oy+1*fy"],
            "loop_dims": list(dims), "loop_sizes": list(dims.values()),
            "operand_precision": {"W": bits, "I": bits, "O": bits, "O_final": bits},
            "operand_source": {"I": i, "W": i},
        })
    return out


def word_pj(spec: AcceleratorSpec, energy: EnergyTable | None = None) -> dict[str, float]:
    """hw_space's energy per word (pJ) of each level ``rf, gbuf, dram`` and per MAC (``mac``)."""
    en = energy if energy is not None else EnergyTable()
    b = spec.precision_bits
    return {"rf": en.access_pj("rf", b), "gbuf": en.access_pj("gbuf", b),
            "dram": en.access_pj("dram", b), "mac": en.mac_pj(b)}


def _bits_per_cycle(bytes_per_cycle: float, word_bits: int, what: str) -> int:
    bw = int(round(bytes_per_cycle * 8))
    if bw < word_bits:
        raise ValueError(f"{what} ({bytes_per_cycle} B/cycle) is narrower than one {word_bits}-bit word; "
                         "ZigZag needs at least one word per cycle")
    return bw


def _memory(size_bits: int, pj_per_word: float, bits: int, operands: list[str],
            ports: list[tuple[str, str, int, list[str]]], served: list[str]) -> dict[str, Any]:
    widths = {p[2] for p in ports}
    if len(widths) != 1:  # one r_cost per memory in ZigZag: every port must be equally wide
        raise ValueError(f"ports of one memory must have one width, got {sorted(widths)}")
    per_access = pj_per_word * widths.pop() / bits
    return {"size": int(size_bits), "r_cost": float(per_access), "w_cost": float(per_access),
            "area": 0.0, "latency": 1, "operands": operands,
            "ports": [{"name": n, "type": t, "bandwidth_min": bits, "bandwidth_max": bw, "allocation": al}
                      for n, t, bw, al in ports],
            "served_dimensions": served}


def rf_words(spec: AcceleratorSpec) -> dict[str, int]:
    """Words of each per-PE register file (by ZigZag memory operand) for ``spec``'s dataflow.

    One RF operand gets all of ``rf_bytes``; ``rs`` splits it as Eyeriss's spads (224:12:24).
    Raises ``ValueError`` if a split RF would get less than one word.
    """
    words = spec.rf_bytes * 8 // spec.precision_bits
    ops = RF_OPERANDS[spec.dataflow]
    if len(ops) == 1:
        out = {ops[0]: words}
    else:
        tot = sum(EYERISS_SPAD_WORDS)
        out = {op: words * n // tot for op, n in zip(ops, EYERISS_SPAD_WORDS)}
    small = [op for op, w in out.items() if w < 1]
    if small or words < 1:
        raise ValueError(f"rf_bytes ({spec.rf_bytes}) is too small to hold one {spec.precision_bits}-bit "
                         f"word per RF operand ({', '.join(small) or 'all'}); raise rf_bytes")
    return out


def accelerator(spec: AcceleratorSpec, energy: EnergyTable | None = None,
                name: str = "hwnas") -> dict[str, Any]:
    """ZigZag's accelerator dict for ``spec`` (see the module docstring for the correspondence).

    Raises:
        ValueError: a bandwidth below one word per cycle, or an RF too small to split.
    """
    b = spec.precision_bits
    pj = word_pj(spec, energy)
    mems: dict[str, Any] = {}
    for op, w in rf_words(spec).items():
        if op == "O":
            ports = [("r_port_1", "read", b, ["O, tl", "O, th"]), ("w_port_1", "write", b, ["O, fh", "O, fl"])]
        else:
            ports = [("r_port_1", "read", b, [f"{op}, tl"]), ("w_port_1", "write", b, [f"{op}, fh"])]
        mems[f"rf_{op}"] = _memory(w * b, pj["rf"], b, [op], ports, [])
    noc = _bits_per_cycle(spec.noc_bw, b, "noc_bw")
    dram = _bits_per_cycle(spec.dram_bw, b, "dram_bw")
    all_ops = ["I1", "I2", "O"]
    mems["gbuf"] = _memory(
        spec.gbuf_bytes * 8, pj["gbuf"], b, all_ops,
        [("r_port_1", "read", noc, ["I1, tl", "I2, tl", "O, tl"]),
         ("w_port_1", "write", noc, ["O, fl"]),
         ("rw_port_1", "read_write", noc, ["I1, fh", "I2, fh", "O, fh", "O, th"])], ["D1", "D2"])
    mems["dram"] = _memory(
        10**12, pj["dram"], b, all_ops,
        [("rw_port_1", "read_write", dram, [f"{op}, {d}" for op in all_ops for d in ("fh", "tl")]
          + ["O, fl", "O, th"])], ["D1", "D2"])
    return {
        "name": name, "memories": mems,
        "operational_array": {
            "unit_energy": float(pj["mac"]), "unit_area": 1.0, "dimensions": ["D1", "D2"],
            "sizes": [spec.rows, spec.cols],
            "systolic_dimensions": [] if spec.dataflow == "rs" else ["D1", "D2"],
        },
    }


def _fill(budget: int, dims: Sequence[tuple[str, int]], left: dict[str, int]) -> list[tuple[str, int]]:
    """Unroll ``dims`` in order into ``budget`` PEs: each takes min(what is left of it, budget left)."""
    out = []
    for d, _ in dims:
        f = min(left.get(d, 1), budget)
        if f > 1:
            out.append((d, f))
            left[d] = math.ceil(left[d] / f)
            budget //= f
        if budget <= 1:
            break
    return out


def spatial_unrolling(layer: Layer, spec: AcceleratorSpec) -> dict[str, list[tuple[str, int]]]:
    """``{"D1": [(dim, factor), ...], "D2": [...]}`` for ``layer`` on ``spec`` (module docstring)."""
    dims = loop_sizes(layer)
    left = dict(dims)
    dw = is_depthwise(layer)
    df = spec.dataflow
    window = [("FX", 0), ("FY", 0)] if dw else [("C", 0), ("FX", 0), ("FY", 0)]
    pixels = [("OX", 0), ("OY", 0)]
    if df == "ws":
        d1 = _fill(spec.rows, window, left)
        d2 = [] if dw else _fill(spec.cols, [("K", 0)], left)
    elif df == "os":
        d1 = _fill(spec.rows, pixels, left)
        d2 = [] if dw else _fill(spec.cols, [("K", 0)], left)
    elif df == "is":
        d1 = _fill(spec.rows, window, left)
        d2 = _fill(spec.cols, pixels, left)
    else:  # rs: FY h x replicated sets down the rows, OY e x replicated sets across the cols
        mp = rs_mapping([layer], spec.rows, spec.cols)
        h, e = int(mp["h"][0]), int(mp["e"][0])
        rep1 = [("G", 0)] if dw else [("C", 0), ("K", 0)]
        rep2 = [("G", 0)] if dw else [("K", 0), ("C", 0)]
        d1 = _fill(h, [("FY", 0)], left)
        d1 += _fill(spec.rows // h, rep1, left)
        d2 = _fill(e, [("OY", 0)], left)
        d2 += _fill(spec.cols // e, rep2, left)
    return {"D1": d1, "D2": d2}


def mapping(layers: Sequence[Layer], spec: AcceleratorSpec) -> list[dict[str, Any]]:
    """ZigZag's mapping list: one entry per layer name (its spatial unrolling), plus ``default``."""
    out = [{"name": "default", "spatial_mapping": {"D1": ["K, 1"], "D2": ["K, 1"]},
            "memory_operand_links": dict(OPERAND_LINKS)}]
    for lay in layers:
        sm = spatial_unrolling(lay, spec)
        filler = "G, 1" if is_depthwise(lay) else "K, 1"
        out.append({"name": lay.name,
                    "spatial_mapping": {d: [f"{n}, {f}" for n, f in sm[d]] or [filler] for d in ("D1", "D2")},
                    "memory_operand_links": dict(OPERAND_LINKS)})
    return out


def depthwise(layer: Layer) -> Layer:
    """The true depthwise form of a SCALE-Sim MobileNet "depthwise" row (C channels, 1 filter, which
    SCALE-Sim runs as a C-deep conv): ``groups = channels = num_filter``."""
    return Layer(layer.name, layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w,
                 layer.channels, layer.channels, layer.stride, groups=layer.channels)


__all__ = ["CONV_EQUATION", "DW_EQUATION", "EYERISS_SPAD_WORDS", "LEVEL_OF_MEMORY", "ZIGZAG_PIP",
           "accelerator", "depthwise", "is_depthwise", "loop_sizes", "mapping", "rf_words",
           "spatial_unrolling", "word_pj", "workload"]
