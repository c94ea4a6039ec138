"""Accelerator specification and the discrete design space over it (numpy only).

:class:`AcceleratorSpec` is the frozen, validated description of one accelerator (PE array, register
file, global buffer, dataflow, bandwidths, clock, precision); :class:`DesignSpace` is a finite set of
choices per field with the integer-vector interface of ``hwnas.space.SearchSpace`` (``cardinalities``,
``encode``, ``decode``, ``sample``, ``mutate``) so the search strategies can drive it unchanged.

Example:
    >>> spec = AcceleratorSpec(rows=12, cols=14, rf_bytes=512, gbuf_bytes=108 * 1024, dataflow="rs",
    ...                        dram_bw=16.0, noc_bw=64.0, clock_mhz=200.0, precision_bits=16)
    >>> AcceleratorSpec.from_dict(spec.to_dict()) == spec
    True
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hw_space.physical import EYERISS_VF, channel_bytes_per_cycle, dram_tech
from latency_db.fileio import atomic_write

DATAFLOWS: tuple[str, ...] = ("ws", "os", "is", "rs")
PRECISIONS: tuple[int, ...] = (8, 16)
_INT_FIELDS = ("rows", "cols", "rf_bytes", "gbuf_bytes")
_FLOAT_FIELDS = ("dram_bw", "noc_bw", "clock_mhz")
_OPTIONAL_FIELDS = ("sram_kb", "bandwidth_words")  # issue 19: absent from to_dict() while None


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _check_positive_number(name: str, value: Any) -> None:
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if not ok or not math.isfinite(float(value)) or float(value) <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


@dataclass(frozen=True)
class AcceleratorSpec:
    """One accelerator design: an immutable, validated value (safe to share between threads).

    Attributes:
        rows, cols: PE array shape (PEs per column and per row of the array), each >= 1.
        rf_bytes: register-file bytes per PE, >= 1.
        gbuf_bytes: global (on-chip) buffer bytes, >= 1.
        dataflow: one of ``ws`` (weight stationary), ``os`` (output stationary), ``is`` (input
            stationary), ``rs`` (row stationary, Eyeriss).
        dram_bw: DRAM <-> global buffer bandwidth in bytes per cycle, > 0.
        noc_bw: global buffer <-> array (network-on-chip) bandwidth in bytes per cycle, > 0.
        clock_mhz: clock frequency in MHz, > 0.
        precision_bits: operand precision, 8 or 16.
        voltage: core supply in V, or ``None`` (nominal 1.0 V, no clock check). When set, it must lie
            in the V-f curve's range and ``clock_mhz`` must not exceed its ``f_max``
            (:data:`hw_space.physical.EYERISS_VF`); dynamic energy scales ``(V / 1.0)^2``.
        dram_tech, dram_channels: a DRAM technology of :data:`hw_space.physical.DRAM_TECHS` and a
            whole number of its channels, both or neither. When set, the DRAM bandwidth is the
            channels' (:attr:`dram_bytes_per_cycle`) and ``dram_bw`` is not used; DRAM energy per bit,
            PHY area and standby power come from the technology.
        sram_kb: optional SCALE-Sim memory system (issue 19): three operand SRAMs ``(ifmap, filter,
            ofmap)`` in KB, each a positive integer (words = ``KB * 1024 * 8 / precision_bits``,
            at least 100). ``None`` (default): not modelled; :mod:`hw_space.traffic` then assumes
            unbounded SRAMs.
        bandwidth_words: optional SCALE-Sim USER-mode interface bandwidth, words per cycle (positive
            integer; needs ``sram_kb``). ``None`` (default): SCALE-Sim's CALC mode, no stalls.

    The two optional fields are left out of :meth:`to_dict` while ``None``, so specs without them
    serialise exactly as before. Construction raises ``ValueError`` with a one-line message naming the offending field.
    """

    rows: int
    cols: int
    rf_bytes: int
    gbuf_bytes: int
    dataflow: str
    dram_bw: float
    noc_bw: float
    clock_mhz: float
    precision_bits: int
    # --- issue 19 physical costs (optional; None keeps the behaviour before them) ---
    voltage: float | None = None
    dram_tech: str | None = None
    dram_channels: int | None = None
    # ---- issue 19: SCALE-Sim-style memory system (optional; see _OPTIONAL_FIELDS) ----
    sram_kb: tuple[int, int, int] | None = None
    bandwidth_words: int | None = None

    def __post_init__(self) -> None:
        for name in _INT_FIELDS:
            _check_positive_int(name, getattr(self, name))
            object.__setattr__(self, name, int(getattr(self, name)))
        if self.dataflow not in DATAFLOWS:
            raise ValueError(f"dataflow must be one of {', '.join(DATAFLOWS)}, got {self.dataflow!r}")
        for name in _FLOAT_FIELDS:
            _check_positive_number(name, getattr(self, name))
            object.__setattr__(self, name, float(getattr(self, name)))
        p = self.precision_bits
        if isinstance(p, bool) or not isinstance(p, (int, np.integer)) or int(p) not in PRECISIONS:
            raise ValueError(f"precision_bits must be one of {PRECISIONS}, got {p!r}")
        object.__setattr__(self, "precision_bits", int(p))
        self._check_physical()
        self._check_memory_system()

    # --- issue 19 physical costs ---
    def _check_physical(self) -> None:
        if self.voltage is not None:
            v = EYERISS_VF.check_voltage(self.voltage)
            object.__setattr__(self, "voltage", v)
            f_max = EYERISS_VF.f_max_mhz(v)
            if self.clock_mhz > f_max * (1 + 1e-9):
                raise ValueError(f"clock_mhz {self.clock_mhz:g} exceeds f_max {f_max:.1f} MHz at voltage "
                                 f"{v:g} V ({EYERISS_VF.name} V-f curve); lower clock_mhz or raise voltage")
        if (self.dram_tech is None) != (self.dram_channels is None):
            raise ValueError("dram_tech and dram_channels go together: give both or neither")
        if self.dram_tech is not None:
            object.__setattr__(self, "dram_tech", dram_tech(self.dram_tech).name)
            _check_positive_int("dram_channels", self.dram_channels)
            object.__setattr__(self, "dram_channels", int(self.dram_channels))  # type: ignore[arg-type]

    @property
    def dram_bytes_per_cycle(self) -> float:
        """DRAM bandwidth in bytes per cycle: the channels' when ``dram_tech`` is set, else ``dram_bw``."""
        if self.dram_tech is None:
            return self.dram_bw
        return channel_bytes_per_cycle(dram_tech(self.dram_tech), int(self.dram_channels or 0), self.clock_mhz)

    def _check_memory_system(self) -> None:
        """Validate/normalise the optional SCALE-Sim memory fields (issue 19)."""
        kb = self.sram_kb
        if kb is not None:
            if isinstance(kb, (str, bytes)) or not isinstance(kb, Sequence) or len(kb) != 3:
                raise ValueError(f"sram_kb must be three SRAM sizes in KB (ifmap, filter, ofmap), got {kb!r}")
            for v in kb:
                _check_positive_int("sram_kb entries", v)
            object.__setattr__(self, "sram_kb", tuple(int(v) for v in kb))
        bw = self.bandwidth_words
        if bw is not None:
            _check_positive_int("bandwidth_words", bw)
            if kb is None:
                raise ValueError("bandwidth_words needs sram_kb (the three operand SRAM sizes)")
            object.__setattr__(self, "bandwidth_words", int(bw))

    @property
    def sram_words(self) -> tuple[int, int, int] | None:
        """The three operand SRAMs in words of ``precision_bits``, or ``None`` (issue 19)."""
        if self.sram_kb is None:
            return None
        wb = self.precision_bits // 8
        return tuple(kb * 1024 // wb for kb in self.sram_kb)  # type: ignore[return-value]

    @property
    def num_pes(self) -> int:
        """Number of processing elements, ``rows * cols``."""
        return self.rows * self.cols

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-serialisable dict of all fields (optional fields only when set)."""
        d = dataclasses.asdict(self)
        for name in _OPTIONAL_FIELDS:
            if d[name] is None:
                del d[name]
        if d.get("sram_kb") is not None:
            d["sram_kb"] = list(d["sram_kb"])
        return d

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AcceleratorSpec:
        """Build from a mapping; unknown or missing keys raise ``ValueError`` naming them."""
        if not isinstance(data, Mapping):
            raise ValueError(f"accelerator spec must be a mapping, got {type(data).__name__}")
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(data) - set(names))
        if unknown:
            raise ValueError(f"unknown accelerator spec keys: {', '.join(map(str, unknown))}; "
                             f"allowed: {', '.join(names)}")
        missing = [f.name for f in dataclasses.fields(cls)  # fields with a default may be left out
                   if f.name not in data and f.default is dataclasses.MISSING]
        if missing:
            raise ValueError(f"missing accelerator spec keys: {', '.join(missing)}")
        return cls(**{n: data[n] for n in names if n in data})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> AcceleratorSpec:
        """Read a spec from ``.json`` or ``.yaml``/``.yml`` (YAML needs PyYAML)."""
        path = Path(path)
        text = path.read_text(encoding="utf-8")
        if _is_yaml(path):
            data = _yaml().safe_load(text)
        elif path.suffix.lower() == ".json":
            try:
                data = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}: not valid JSON: {exc}") from None
        else:
            raise ValueError(f"{path}: unknown spec format {path.suffix!r}; use .json, .yaml or .yml")
        return cls.from_dict(data)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the spec as JSON or YAML (by suffix), atomically (temp file + ``os.replace``)."""
        path = Path(path)
        if _is_yaml(path):
            text = _yaml().safe_dump(self.to_dict(), sort_keys=False)
        elif path.suffix.lower() == ".json":
            text = json.dumps(self.to_dict(), indent=2) + "\n"
        else:
            raise ValueError(f"{path}: unknown spec format {path.suffix!r}; use .json, .yaml or .yml")
        atomic_write(path, text)
        return path


def _is_yaml(path: Path) -> bool:
    return path.suffix.lower() in (".yaml", ".yml")


def _yaml() -> Any:
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        raise ImportError("YAML accelerator specs need PyYAML: pip install pyyaml "
                          "(or use a .json spec)") from None
    return yaml


def mutate_vector(vec: np.ndarray, cards: Sequence[int], rng: np.random.Generator, what: str) -> np.ndarray:
    """``vec`` with one position (among those with > 1 choice) moved to a different choice, drawn
    from ``rng``; ``ValueError`` naming ``what`` when every position has a single choice."""
    live = [i for i, c in enumerate(cards) if c > 1]
    if not live:
        raise ValueError(f"{what} has a single design; nothing to mutate")
    pos = live[int(rng.integers(len(live)))]
    vec[pos] = (vec[pos] + int(rng.integers(1, cards[pos]))) % cards[pos]
    return vec


def _default_pe_shapes() -> tuple[tuple[int, int], ...]:
    sides = (8, 16, 32, 64)
    return tuple((r, c) for r in sides for c in sides) + ((12, 14),)


@dataclass(frozen=True)
class DesignSpace:
    """A finite accelerator design space: a tuple of choices per spec field.

    Positions of the integer vector, in order: ``pe_shapes`` (``(rows, cols)`` pairs), ``rf_bytes``,
    ``gbuf_bytes``, ``dataflows``, ``dram_bw``, ``noc_bw``, ``clock_mhz``, ``precision_bits``.
    Defaults follow issue 5: PE 8-64 per side (powers of two) plus Eyeriss's 12x14; RF 16-512 B;
    global buffer 32 KB-2 MB; DRAM 4-64 B/cycle; clock 200 MHz-1 GHz; all four dataflows. NoC
    bandwidth (64 B/cycle) and precision (8/16 bit) defaults are this module's choice. Immutable;
    ``sample``/``mutate`` draw only from the ``numpy.random.Generator`` passed in.
    """

    pe_shapes: tuple[tuple[int, int], ...] = _default_pe_shapes()
    rf_bytes: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    gbuf_bytes: tuple[int, ...] = tuple(2**k * 1024 for k in range(5, 12))  # 32 KB .. 2 MB
    dataflows: tuple[str, ...] = DATAFLOWS
    dram_bw: tuple[float, ...] = (4.0, 8.0, 16.0, 32.0, 64.0)
    noc_bw: tuple[float, ...] = (64.0,)
    clock_mhz: tuple[float, ...] = (200.0, 400.0, 600.0, 800.0, 1000.0)
    precision_bits: tuple[int, ...] = (8, 16)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            choices = getattr(self, f.name)
            if isinstance(choices, (str, bytes)) or not isinstance(choices, Sequence) or not choices:
                raise ValueError(f"design space {f.name} must be a non-empty sequence of choices")
            if f.name == "pe_shapes":
                choices = tuple(tuple(int(v) for v in shape) for shape in choices)
                if any(len(s) != 2 for s in choices):
                    raise ValueError("design space pe_shapes must be (rows, cols) pairs")
            else:
                choices = tuple(choices)
            if len(set(choices)) != len(choices):
                raise ValueError(f"design space {f.name} has duplicate choices")
            object.__setattr__(self, f.name, choices)
        # every choice must make a valid spec: validate each value once against a reference spec
        ref = self._spec([0] * len(self.cardinalities))
        for r, c in self.pe_shapes:
            dataclasses.replace(ref, rows=r, cols=c)
        for name, field in _VEC_FIELDS[1:]:
            for v in getattr(self, name):
                dataclasses.replace(ref, **{field: v})

    @property
    def cardinalities(self) -> tuple[int, ...]:
        """Number of choices of each position of the integer vector."""
        return tuple(len(getattr(self, name)) for name, _ in _VEC_FIELDS)

    @property
    def size(self) -> int:
        """Number of distinct designs."""
        return int(np.prod(self.cardinalities, dtype=object))

    def encode(self, spec: AcceleratorSpec) -> np.ndarray:
        """Integer vector (int64) of ``spec``; ``ValueError`` naming the field if outside the space."""
        vec = []
        for name, field in _VEC_FIELDS:
            value = (spec.rows, spec.cols) if field == "pe" else getattr(spec, field)
            choices = getattr(self, name)
            if value not in choices:
                raise ValueError(f"{field if field != 'pe' else 'rows x cols'} = {value!r} is not in the "
                                 f"design space (choices: {', '.join(map(str, choices))})")
            vec.append(choices.index(value))
        return np.array(vec, dtype=np.int64)

    def decode(self, vector: Sequence[int] | np.ndarray) -> AcceleratorSpec:
        """Inverse of :meth:`encode`; ``ValueError`` for a wrong length or out-of-range entry."""
        vec = [int(v) for v in np.asarray(vector).ravel()]
        cards = self.cardinalities
        if len(vec) != len(cards):
            raise ValueError(f"hw design space: vector must have {len(cards)} entries, got {len(vec)}")
        for i, (v, c) in enumerate(zip(vec, cards)):
            if not 0 <= v < c:
                raise ValueError(f"hw design space: vector entry {i} ({_VEC_FIELDS[i][1]}) is {v}, "
                                 f"must be in [0, {c})")
        return self._spec(vec)

    def contains(self, spec: AcceleratorSpec) -> bool:
        """Whether every field of ``spec`` is one of this space's choices."""
        try:
            self.encode(spec)
        except ValueError:
            return False
        return True

    def sample(self, rng: np.random.Generator) -> AcceleratorSpec:
        """Draw a design uniformly over the choices."""
        return self._spec([int(rng.integers(c)) for c in self.cardinalities])

    def mutate(self, spec: AcceleratorSpec, rng: np.random.Generator) -> AcceleratorSpec:
        """Change one field (among those with >1 choice) to a different choice."""
        return self._spec(mutate_vector(self.encode(spec), self.cardinalities, rng, "hw design space"))

    def _spec(self, vec: Sequence[int]) -> AcceleratorSpec:
        rows, cols = self.pe_shapes[vec[0]]
        kw = {field: getattr(self, name)[v] for (name, field), v in zip(_VEC_FIELDS[1:], vec[1:])}
        return AcceleratorSpec(rows=rows, cols=cols, **kw)


# (DesignSpace attribute, AcceleratorSpec field) per vector position
_VEC_FIELDS: tuple[tuple[str, str], ...] = (
    ("pe_shapes", "pe"), ("rf_bytes", "rf_bytes"), ("gbuf_bytes", "gbuf_bytes"),
    ("dataflows", "dataflow"), ("dram_bw", "dram_bw"), ("noc_bw", "noc_bw"),
    ("clock_mhz", "clock_mhz"), ("precision_bits", "precision_bits"),
)
