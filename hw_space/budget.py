"""Fixed-budget accelerator design spaces, after NAAS (numpy only).

NAAS (Y. Lin, M. Yang, S. Han, "NAAS: Neural Accelerator Architecture Search", DAC 2021) caps the
resources at a baseline chip's (number of PEs, on-chip memory, NoC bandwidth) and searches how to
organise them: array shape, buffer sizes, connectivity and the mapping. :class:`ResourceBudget` is
such a cap; :class:`FixedBudgetSpace` is the design space under it, with the integer-vector
interface of :class:`hw_space.spec.DesignSpace` (``cardinalities``, ``encode``, ``decode``,
``contains``, ``sample``, ``mutate``, ``size``), so the strategies and the sizing search drive it
unchanged. Every design of the space stays within the caps:

* **array shape** ``rows x cols <= pes``: every ``(rows, cols)`` with both sides in a pruned set
  (powers of two and divisors of ``pes``, at least ``min_side``) using at least ``min_fill`` of the
  PEs, square or not; arrays that leave PEs idle are allowed (so 12 x 12 under 168 PEs);
* **buffer split** between the per-PE register files and the global buffer: the space chooses
  ``rf_bytes`` per PE, and the global buffer gets the rest of the on-chip storage,
  ``gbuf = sram_bytes - rows * cols * rf_bytes`` (more buffer never costs in the model but area,
  so the whole budget is spent);
* **dataflow** (WS / OS / IS / RS); the per-layer loop order and tiling of the buffer level are
  the mapper's (:class:`hw_space.mapper.BufferMapper`), not part of the vector;
* **clock** and **DRAM bandwidth** from fixed lists (by default the baseline's own value only: a
  clock or a bandwidth that costs nothing is always searched to its largest value); or, priced
  (``voltages`` and ``dram_channels``, :func:`physical_space`), the **supply voltage** -- the
  clock is then the fastest that voltage allows (:data:`hw_space.physical.EYERISS_VF`) and dynamic
  energy scales with V^2 -- and whole **DRAM channels** of one technology (bandwidth, energy per
  bit, PHY area and standby power per channel: :data:`hw_space.physical.DRAM_TECHS`);
* NoC bandwidth and precision stay at the baseline's.

The baseline chip itself is a design of its space (``budget.baseline``).

Example:
    >>> import numpy as np
    >>> space = FixedBudgetSpace(EYERISS_BUDGET)
    >>> space.contains(EYERISS_BUDGET.baseline)
    True
    >>> spec = space.sample(np.random.default_rng(0))
    >>> spec.num_pes <= 168 and spec.gbuf_bytes + spec.num_pes * spec.rf_bytes == EYERISS_BUDGET.sram_bytes
    True
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from hw_space.physical import EYERISS_VF, dram_tech
from hw_space.spec import DATAFLOWS, AcceleratorSpec, mutate_vector


@dataclass(frozen=True)
class ResourceBudget:
    """A baseline chip's resources, which every design of a :class:`FixedBudgetSpace` shares.

    Attributes:
        name: short name (``eyeriss``, ``edge-tpu``).
        baseline: the baseline chip as a spec (its rows x cols, RF and buffer define the caps).
        pes: cap on ``rows * cols``.
        sram_bytes: cap on on-chip storage, ``gbuf_bytes + rows * cols * rf_bytes``.
        noc_bw: the NoC bandwidth every design gets (bytes/cycle; the baseline's).
        source: where the numbers come from (one line).
    """

    name: str
    baseline: AcceleratorSpec
    source: str

    @property
    def pes(self) -> int:
        return self.baseline.num_pes

    @property
    def sram_bytes(self) -> int:
        return self.baseline.gbuf_bytes + self.baseline.num_pes * self.baseline.rf_bytes

    @property
    def noc_bw(self) -> float:
        return self.baseline.noc_bw


#: Eyeriss (Y.-H. Chen et al., IEEE JSSC 52(1), 2017): 12 x 14 PEs, 520 B scratch pads per PE
#: (224 + 12 + 24 16-bit words), 108 KB global buffer, 16 bit, 200 MHz, row stationary. DRAM
#: 3.6 B/cycle = its 64-bit off-chip bus at the 90 MHz link clock seen from the 200 MHz core;
#: NoC 24 B/cycle (three 64-bit buses: filter, ifmap, psum) is **assumed** (as in
#: bench/hw_cost_eyeriss.py). Budget: 168 PEs, 108 KB + 168 x 520 B = 193.3 KB on chip.
EYERISS_BUDGET = ResourceBudget(
    "eyeriss",
    AcceleratorSpec(rows=12, cols=14, rf_bytes=520, gbuf_bytes=108 * 1024, dataflow="rs", dram_bw=3.6,
                    noc_bw=24.0, clock_mhz=200.0, precision_bits=16),
    "Eyeriss, IEEE JSSC 52(1) 2017 (NoC 24 B/cycle assumed)",
)

#: Google's Edge TPU: 4 TOPS int8 (coral.ai/docs/edgetpu/faq) and "roughly 8 MB of SRAM" for
#: parameters (coral.ai/docs/edgetpu/compiler, "Parameter data caching"). Not published, so
#: **assumed**: a 64 x 64 weight-stationary int8 array (4096 MACs = 8192 ops per cycle: 4 TOPS at
#: ~490 MHz, taken as 500 MHz), 16 B of registers per PE, the 8 MiB as the global buffer, NoC
#: 128 B/cycle (one 8-bit word per array row and column per cycle), DRAM 16 B/cycle.
EDGE_TPU_BUDGET = ResourceBudget(
    "edge-tpu",
    AcceleratorSpec(rows=64, cols=64, rf_bytes=16, gbuf_bytes=8 * 1024 * 1024, dataflow="ws", dram_bw=16.0,
                    noc_bw=128.0, clock_mhz=500.0, precision_bits=8),
    "Coral Edge TPU docs: 4 TOPS, ~8 MB SRAM (array shape, clock, RF, NoC and DRAM bandwidth assumed)",
)

#: Budgets by name, for the command line.
BUDGETS: dict[str, ResourceBudget] = {b.name: b for b in (EYERISS_BUDGET, EDGE_TPU_BUDGET)}


def budget_by_name(name: str) -> ResourceBudget:
    """The named budget; ``ValueError`` (one line) listing the names for an unknown one."""
    if name not in BUDGETS:
        raise ValueError(f"unknown resource budget {name!r}; choose one of {', '.join(BUDGETS)}")
    return BUDGETS[name]


def _sides(pes: int, min_side: int) -> list[int]:
    pw = [2**k for k in range(pes.bit_length()) if 2**k <= pes]
    divs = [d for d in range(1, pes + 1) if pes % d == 0]
    return sorted({s for s in pw + divs if min_side <= s <= pes // min_side})


def budget_pe_shapes(pes: int, min_side: int = 2, min_fill: float = 0.5,
                     extra: Sequence[tuple[int, int]] = ()) -> tuple[tuple[int, int], ...]:
    """Array shapes under a PE cap: ``(r, c)`` with ``r, c`` in the pruned side set (powers of
    two, divisors of ``pes``; at least ``min_side``), ``min_fill * pes <= r * c <= pes``, plus the
    widest ``c`` for each ``r`` (``c = pes // r``) and ``extra``; sorted."""
    sides = _sides(pes, min_side)
    shapes = {(r, c) for r in sides for c in sides if min_fill * pes <= r * c <= pes}
    shapes |= {(r, pes // r) for r in sides if pes // r >= min_side}
    shapes |= {(int(r), int(c)) for r, c in extra}
    return tuple(sorted(shapes))


@dataclass(frozen=True)
class FixedBudgetSpace:
    """Accelerator designs within a :class:`ResourceBudget` (see the module docstring).

    Positions of the integer vector: ``pe_shapes``, ``rf_bytes``, ``dataflows``, ``clock_mhz``,
    ``dram_bw``. Immutable; ``sample``/``mutate`` draw only from the generator passed in.
    Construction raises ``ValueError`` (one line) for a shape over the PE cap, an RF choice that
    leaves no global buffer for the largest array, or an empty/duplicate choice list.

    Args:
        budget: the caps.
        pe_shapes: array shapes (default :func:`budget_pe_shapes` of the PE cap, with the baseline's).
        rf_bytes: RF bytes per PE (default 16 .. 512 B in powers of two, plus the baseline's).
        dataflows, clock_mhz, dram_bw: choices (defaults: all four dataflows; the baseline's
            clock and DRAM bandwidth only).
        min_gbuf_bytes: smallest global buffer any design may be left with (default 8 KiB).
        voltages: supply voltages; when given they replace the clock position (each design runs
            at the fastest clock its voltage allows, and pays V^2 on dynamic energy), and
            ``clock_mhz`` must be left empty.
        dram_channels, dram_tech: numbers of whole channels of ``dram_tech``; when given they
            replace the DRAM-bandwidth position, and ``dram_bw`` must be left empty.
    """

    budget: ResourceBudget
    pe_shapes: tuple[tuple[int, int], ...] = ()
    rf_bytes: tuple[int, ...] = ()
    dataflows: tuple[str, ...] = DATAFLOWS
    clock_mhz: tuple[float, ...] = ()
    dram_bw: tuple[float, ...] = ()
    min_gbuf_bytes: int = 8 * 1024
    voltages: tuple[float, ...] = ()
    dram_channels: tuple[int, ...] = ()
    dram_tech: str = "lpddr4"

    def __post_init__(self) -> None:
        b = self.budget.baseline
        shapes = self.pe_shapes or budget_pe_shapes(self.budget.pes, extra=[(b.rows, b.cols)])
        rf = self.rf_bytes or tuple(sorted({16, 32, 64, 128, 256, 512, b.rf_bytes}))
        if self.voltages and self.clock_mhz:
            raise ValueError("fixed-budget space: give voltages or clock_mhz, not both (a voltage sets the clock)")
        if self.dram_channels and self.dram_bw:
            raise ValueError("fixed-budget space: give dram_channels or dram_bw, not both (channels set the bandwidth)")
        fields = {"pe_shapes": tuple(tuple(int(v) for v in s) for s in shapes), "rf_bytes": tuple(int(v) for v in rf),
                  "dataflows": tuple(self.dataflows), "clock_mhz": tuple(float(v) for v in self.clock_mhz or (b.clock_mhz,)),
                  "dram_bw": tuple(float(v) for v in self.dram_bw or (b.dram_bw,))}
        if self.voltages:
            fields["voltages"] = tuple(EYERISS_VF.check_voltage(v) for v in self.voltages)
        if self.dram_channels:
            dram_tech(self.dram_tech)  # a one-line error naming the choices
            bad = [c for c in self.dram_channels if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or c < 1]
            if bad:
                raise ValueError(f"fixed-budget space: dram_channels must be positive integers, got {bad[0]!r}")
            fields["dram_channels"] = tuple(int(c) for c in self.dram_channels)
        for name, choices in fields.items():
            if not choices:
                raise ValueError(f"fixed-budget space {name} must be a non-empty list of choices")
            if len(set(choices)) != len(choices):
                raise ValueError(f"fixed-budget space {name} has duplicate choices")
            object.__setattr__(self, name, choices)
        over = [s for s in self.pe_shapes if len(s) != 2 or s[0] * s[1] > self.budget.pes or min(s) < 1]
        if over:
            raise ValueError(f"fixed-budget space: array shape {over[0]} is not rows x cols <= {self.budget.pes} PEs")
        worst = max(r * c for r, c in self.pe_shapes) * max(self.rf_bytes)
        if self.budget.sram_bytes - worst < self.min_gbuf_bytes:
            raise ValueError(f"fixed-budget space: rf_bytes {max(self.rf_bytes)} on {max(r * c for r, c in self.pe_shapes)} "
                             f"PEs leaves under {self.min_gbuf_bytes} B of the {self.budget.sram_bytes} B budget for the "
                             "global buffer; drop the largest rf_bytes")
        try:  # every choice makes a valid spec
            for field, name in (("clock_mhz", "clock_mhz"), ("dram_bw", "dram_bw"), ("dataflow", "dataflows"),
                                ("rf_bytes", "rf_bytes")):
                for v in getattr(self, name):
                    dataclasses.replace(b, **{field: v})
        except ValueError as exc:
            raise ValueError(f"fixed-budget space: {exc}") from None

    @property
    def positions(self) -> tuple[str, ...]:
        """What each position of the integer vector chooses (the field holding its choices)."""
        return ("pe_shapes", "rf_bytes", "dataflows", "voltages" if self.voltages else "clock_mhz",
                "dram_channels" if self.dram_channels else "dram_bw")

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Number of choices of each position of the integer vector."""
        return tuple(len(getattr(self, name)) for name in self.positions)

    @property
    def size(self) -> int:
        """Number of distinct designs."""
        return int(np.prod(self.cardinalities, dtype=object))

    def gbuf_bytes(self, rows: int, cols: int, rf_bytes: int) -> int:
        """The global buffer a design gets: the on-chip storage its register files leave."""
        return self.budget.sram_bytes - rows * cols * rf_bytes

    def decode(self, vector: Sequence[int] | np.ndarray) -> AcceleratorSpec:
        """The design of an integer vector; ``ValueError`` for a wrong length or out-of-range entry."""
        vec = [int(v) for v in np.asarray(vector).ravel()]
        cards = self.cardinalities
        if len(vec) != len(cards):
            raise ValueError(f"fixed-budget space: vector must have {len(cards)} entries, got {len(vec)}")
        for i, (v, c) in enumerate(zip(vec, cards)):
            if not 0 <= v < c:
                raise ValueError(f"fixed-budget space: vector entry {i} ({self.positions[i]}) is {v}, must be in [0, {c})")
        (rows, cols), rf = self.pe_shapes[vec[0]], self.rf_bytes[vec[1]]
        b = self.budget.baseline
        physical: dict[str, object] = {}
        if self.voltages:
            v = self.voltages[vec[3]]
            physical.update(voltage=v, clock_mhz=EYERISS_VF.f_max_mhz(v))
        else:
            physical["clock_mhz"] = self.clock_mhz[vec[3]]
        if self.dram_channels:
            physical.update(dram_bw=b.dram_bw, dram_tech=self.dram_tech, dram_channels=self.dram_channels[vec[4]])
        else:
            physical["dram_bw"] = self.dram_bw[vec[4]]
        return AcceleratorSpec(rows=rows, cols=cols, rf_bytes=rf, gbuf_bytes=self.gbuf_bytes(rows, cols, rf),
                               dataflow=self.dataflows[vec[2]], noc_bw=b.noc_bw, precision_bits=b.precision_bits,
                               **physical)  # type: ignore[arg-type]

    def encode(self, spec: AcceleratorSpec) -> np.ndarray:
        """Integer vector (int64) of ``spec``; ``ValueError`` naming the field if it is not a design
        of this space (a field outside the choices, or a buffer/NoC/precision off the budget's)."""
        b = self.budget.baseline
        for field, want in (("noc_bw", b.noc_bw), ("precision_bits", b.precision_bits),
                            ("gbuf_bytes", self.gbuf_bytes(spec.rows, spec.cols, spec.rf_bytes))):
            if getattr(spec, field) != want:
                raise ValueError(f"{field} = {getattr(spec, field)!r} is not the {self.budget.name} budget's "
                                 f"({want!r} for this array and RF)")
        if self.voltages and spec.voltage is not None and spec.clock_mhz != EYERISS_VF.f_max_mhz(spec.voltage):
            raise ValueError(f"clock_mhz = {spec.clock_mhz!r} is not the fastest clock at {spec.voltage} V, "
                             f"which every design of this space runs at")
        values = ((spec.rows, spec.cols), spec.rf_bytes, spec.dataflow,
                  spec.voltage if self.voltages else spec.clock_mhz,
                  spec.dram_channels if self.dram_channels else spec.dram_bw)
        if self.dram_channels and spec.dram_tech != self.dram_tech:
            raise ValueError(f"dram_tech = {spec.dram_tech!r} is not this space's ({self.dram_tech!r})")
        if not self.dram_channels and spec.dram_tech is not None:
            raise ValueError("dram_tech is set, but this fixed-budget space has no DRAM channels position")
        if not self.voltages and spec.voltage is not None:
            raise ValueError("voltage is set, but this fixed-budget space has no voltage position")
        vec = []
        for name, value in zip(self.positions, values):
            choices = getattr(self, name)
            if value not in choices:
                raise ValueError(f"{name} = {value!r} is not in the {self.budget.name} fixed-budget space "
                                 f"(choices: {', '.join(map(str, choices))})")
            vec.append(choices.index(value))
        return np.array(vec, dtype=np.int64)

    def contains(self, spec: AcceleratorSpec) -> bool:
        """Whether ``spec`` is a design of this space."""
        try:
            self.encode(spec)
        except ValueError:
            return False
        return True

    def sample(self, rng: np.random.Generator) -> AcceleratorSpec:
        """A design drawn uniformly over the choices."""
        return self.decode([int(rng.integers(c)) for c in self.cardinalities])

    def mutate(self, spec: AcceleratorSpec, rng: np.random.Generator) -> AcceleratorSpec:
        """Change one position (among those with > 1 choice) to a different choice."""
        return self.decode(mutate_vector(self.encode(spec), self.cardinalities, rng, "fixed-budget space"))


#: Supplies searched with ``physical_space`` (V): Eyeriss's published range, JSSC 2017 Table IV
#: (0.82-1.17 V), its ends and three points between.
EYERISS_VOLTAGES: tuple[float, ...] = (0.82, 0.9, 1.0, 1.1, 1.17)
#: Whole LPDDR4 x16 channels searched with ``physical_space``.
DRAM_CHANNEL_CHOICES: tuple[int, ...] = (1, 2, 4)


def physical_space(budget: ResourceBudget, **kwargs: object) -> FixedBudgetSpace:
    """The fixed-budget space of ``budget`` with clock and DRAM priced: supply voltage from
    :data:`EYERISS_VOLTAGES` (clock = the fastest it allows) and 1, 2 or 4 LPDDR4 channels.

    Raises:
        ValueError: the baseline's clock is outside the Eyeriss V-f curve, the only one sourced
            (so the edge-TPU-like budget's 500 MHz is refused), in one line.
    """
    lo, hi = EYERISS_VF.f_max_mhz(EYERISS_VF.v_range[0]), EYERISS_VF.f_max_mhz(EYERISS_VF.v_range[1])
    if not lo <= budget.baseline.clock_mhz <= hi * (1 + 1e-9):
        raise ValueError(f"the {budget.name} budget's clock ({budget.baseline.clock_mhz:g} MHz) is outside the "
                         f"{EYERISS_VF.name} V-f curve ({lo:.0f}-{hi:.0f} MHz), the only one sourced: "
                         "search it without voltage and DRAM channels")
    kwargs.setdefault("voltages", EYERISS_VOLTAGES)
    kwargs.setdefault("dram_channels", DRAM_CHANNEL_CHOICES)
    return FixedBudgetSpace(budget, **kwargs)  # type: ignore[arg-type]


__all__ = ["BUDGETS", "DRAM_CHANNEL_CHOICES", "EDGE_TPU_BUDGET", "EYERISS_BUDGET", "EYERISS_VOLTAGES", "FixedBudgetSpace",
           "ResourceBudget", "budget_by_name", "budget_pe_shapes", "physical_space"]
