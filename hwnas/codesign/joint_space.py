"""The joint search space of codesign: (network architecture, accelerator design) pairs.

A :class:`JointSpace` is an ordinary :class:`~hwnas.space.base.SearchSpace`, so every strategy of
``hwnas.strategy`` (random, evolution, REINFORCE, NSGA-II) searches it unchanged. Its canonical
string is ``"<network spec>@<hardware key>"``, the hardware key being a compact, canonical and
parseable rendering of an :class:`~hw_space.spec.AcceleratorSpec`, e.g.
``ws-16x16-rf64-gb256k-dram16-noc64-800mhz-8b`` (dataflow, PE rows x cols, RF bytes per PE, global
buffer, DRAM and NoC bytes/cycle, clock, precision). Its integer vector is the network's vector
followed by the :class:`~hw_space.spec.DesignSpace` vector.

Example:
    >>> from hwnas.space import NB201Space
    >>> from hw_space import DesignSpace
    >>> import numpy as np
    >>> space = JointSpace(NB201Space(), DesignSpace())
    >>> arch = space.sample(np.random.default_rng(0))
    >>> space.decode(space.encode(arch)) == arch and space.parse(arch.spec) == arch
    True
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from hw_space.budget import FixedBudgetSpace
from hw_space.spec import AcceleratorSpec, DesignSpace
from hwnas.space.base import Arch, SearchSpace, check_vector


_NUM = r"(\d+(?:\.\d+)?(?:e[-+]?\d+)?)"
_HW_KEY = re.compile(
    rf"^(ws|os|is|rs)-(\d+)x(\d+)-rf(\d+)-gb(\d+)(k?)-dram{_NUM}-noc{_NUM}-{_NUM}mhz-(\d+)b"
    rf"(?:-{_NUM}v)?(?:-([a-z0-9]+)x(\d+))?$"
)


def _num(value: float) -> str:
    """Shortest text that reads back as exactly ``value`` (``800``, or every digit of a derived clock)."""
    short = f"{value:g}"
    return short if float(short) == value else repr(float(value))


def hw_key(spec: AcceleratorSpec) -> str:
    """Compact canonical string of an accelerator, e.g. ``ws-16x16-rf64-gb256k-dram16-noc64-800mhz-8b``.

    The global buffer is written in KiB (``k`` suffix) when a whole number of KiB, else in bytes.
    The physical fields follow when set (issue 19): ``-0.9v`` (supply) and ``-lpddr4x2`` (DRAM
    technology x channels). :func:`parse_hw_key` inverts it exactly.
    """
    gb = f"{spec.gbuf_bytes // 1024}k" if spec.gbuf_bytes % 1024 == 0 else str(spec.gbuf_bytes)
    key = (f"{spec.dataflow}-{spec.rows}x{spec.cols}-rf{spec.rf_bytes}-gb{gb}-dram{_num(spec.dram_bw)}"
           f"-noc{_num(spec.noc_bw)}-{_num(spec.clock_mhz)}mhz-{spec.precision_bits}b")
    if spec.voltage is not None:
        key += f"-{_num(spec.voltage)}v"
    if spec.dram_tech is not None:
        key += f"-{spec.dram_tech}x{spec.dram_channels}"
    return key


def parse_hw_key(text: str) -> AcceleratorSpec:
    """Inverse of :func:`hw_key`; ``ValueError`` (one line) for a malformed key or a bad value."""
    m = _HW_KEY.match(text.strip().lower())
    if not m:
        raise ValueError(f"hardware key must read like ws-16x16-rf64-gb256k-dram16-noc64-800mhz-8b, got {text!r}")
    df, rows, cols, rf, gb, kib, dram, noc, clock, prec, volt, tech, channels = m.groups()
    return AcceleratorSpec(rows=int(rows), cols=int(cols), rf_bytes=int(rf),
                           gbuf_bytes=int(gb) * (1024 if kib else 1), dataflow=df, dram_bw=float(dram),
                           noc_bw=float(noc), clock_mhz=float(clock), precision_bits=int(prec),
                           voltage=None if volt is None else float(volt), dram_tech=tech,
                           dram_channels=None if channels is None else int(channels))


class JointSpace(SearchSpace):
    """Network x accelerator pairs (immutable; safe to share between threads).

    Contract (on top of :class:`SearchSpace`'s): ``split(a)`` returns the network :class:`Arch` of
    ``net`` and the :class:`AcceleratorSpec` of ``hw``; ``parse`` accepts ``"<net>@<hw key>"`` and
    refuses a bad network part, a malformed key or a design outside ``hw`` with one line;
    ``mutate`` changes the network or the accelerator (probability 0.5 each; the network alone
    when ``hw`` holds a single design).

    Args:
        net: the network search space (``nb201``, ``macro``...).
        hw: the accelerator design space (default :class:`DesignSpace`'s ranges), or a
            :class:`~hw_space.budget.FixedBudgetSpace` (designs within a baseline chip's resources).
    """

    def __init__(self, net: SearchSpace, hw: DesignSpace | FixedBudgetSpace | None = None) -> None:
        self.net = net
        self.hw = hw if hw is not None else DesignSpace()
        self.name = f"joint-{net.name}"
        self._n_net = len(net.cardinalities)

    # -- pairs -------------------------------------------------------------------------------
    def make(self, net_arch: Arch, spec: AcceleratorSpec) -> Arch:
        """The joint architecture of a network and a design (validated)."""
        return self.parse(f"{net_arch.spec}@{hw_key(spec)}")

    def split(self, arch: Arch) -> tuple[Arch, AcceleratorSpec]:
        """``(network arch, accelerator spec)`` of a joint architecture."""
        self._check_space(arch)
        net_text, _, hw_text = arch.spec.partition("@")
        return Arch(self.net.name, net_text), parse_hw_key(hw_text)

    # -- SearchSpace -------------------------------------------------------------------------
    @property
    def size(self) -> int:
        return int(self.net.size) * int(self.hw.size)

    @property
    def cardinalities(self) -> tuple[int, ...]:
        return tuple(self.net.cardinalities) + tuple(self.hw.cardinalities)

    def parse(self, text: str) -> Arch:
        text = str(text).strip()
        net_text, sep, hw_text = text.rpartition("@")
        if not sep or not net_text:
            raise ValueError(f"{self.name}: expected '<{self.net.name} arch>@<hardware key>', got {text!r}")
        net_arch = self.net.parse(net_text)
        try:
            spec = parse_hw_key(hw_text)
        except ValueError as exc:
            raise ValueError(f"{self.name}: {exc}") from None
        if not self.hw.contains(spec):
            try:
                self.hw.encode(spec)
            except ValueError as exc:
                raise ValueError(f"{self.name}: {exc}") from None
        return Arch(self.name, f"{net_arch.spec}@{hw_key(spec)}")

    def sample(self, rng: np.random.Generator) -> Arch:
        net_arch = self.net.sample(rng)
        return self._join(net_arch, self.hw.sample(rng))

    def mutate(self, arch: Arch, rng: np.random.Generator) -> Arch:
        net_arch, spec = self.split(arch)
        if self.hw.size > 1 and rng.random() < 0.5:
            return self._join(net_arch, self.hw.mutate(spec, rng))
        return self._join(self.net.mutate(net_arch, rng), spec)

    def encode(self, arch: Arch) -> np.ndarray:
        net_arch, spec = self.split(arch)
        return np.concatenate([self.net.encode(net_arch), self.hw.encode(spec)]).astype(np.int64)

    def decode(self, vector: Sequence[int] | np.ndarray) -> Arch:
        vec = check_vector(vector, self.cardinalities, self.name)
        return self._join(self.net.decode(vec[: self._n_net]), self.hw.decode(vec[self._n_net:]))

    def input_shape(self, arch: Arch) -> tuple[int, int, int, int]:
        return self.net.input_shape(self.split(arch)[0])

    def _join(self, net_arch: Arch, spec: AcceleratorSpec) -> Arch:
        return Arch(self.name, f"{net_arch.spec}@{hw_key(spec)}")


_DS_FIELDS = tuple(f.name for f in dataclasses.fields(DesignSpace))


def design_space_from_dict(data: Any) -> DesignSpace:
    """A :class:`DesignSpace` from ``{field: [choices...]}``; fields left out keep their defaults.

    Fields: ``pe_shapes`` (``[[rows, cols], ...]``), ``rf_bytes``, ``gbuf_bytes``, ``dataflows``,
    ``dram_bw``, ``noc_bw``, ``clock_mhz``, ``precision_bits``. ``ValueError`` (one line) names an
    unknown field or a bad choice.
    """
    if not isinstance(data, dict):
        raise ValueError(f"hardware design space must be a mapping of field -> list of choices, got {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - set(_DS_FIELDS))
    if unknown:
        raise ValueError(f"unknown hardware design space fields: {', '.join(unknown)}; allowed: {', '.join(_DS_FIELDS)}")
    kw: dict[str, Any] = {}
    for name, choices in data.items():
        if not isinstance(choices, list) or not choices:
            raise ValueError(f"hardware design space {name} must be a non-empty list of choices")
        if name == "pe_shapes":
            if not all(isinstance(s, (list, tuple)) and len(s) == 2 for s in choices):
                raise ValueError("hardware design space pe_shapes must be [rows, cols] pairs")
            kw[name] = tuple(tuple(s) for s in choices)
        elif name in ("dram_bw", "noc_bw", "clock_mhz"):
            if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in choices):
                raise ValueError(f"hardware design space {name} must be numbers, got {choices!r}")
            kw[name] = tuple(float(v) for v in choices)
        else:
            kw[name] = tuple(choices)
    try:
        return DesignSpace(**kw)
    except (TypeError, ValueError) as exc:
        raise ValueError(str(exc).splitlines()[0]) from None


def load_design_space(path: str | os.PathLike[str]) -> DesignSpace:
    """Read :func:`design_space_from_dict`'s mapping from a ``.json`` (or ``.yaml``/``.yml``) file."""
    p = Path(path)
    if not p.is_file():
        raise ValueError(f"--hw-space {p}: no such file")
    text = p.read_text(encoding="utf-8")
    if p.suffix.lower() in (".yaml", ".yml"):
        try:
            import yaml  # type: ignore[import-untyped]
        except ImportError:
            raise ValueError("YAML design spaces need PyYAML: pip install pyyaml (or use .json)") from None
        data = yaml.safe_load(text)
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"--hw-space {p}: not valid JSON: {exc}") from None
    try:
        return design_space_from_dict(data)
    except ValueError as exc:
        raise ValueError(f"--hw-space {p}: {exc}") from None


def split_metrics(space: JointSpace, joint_spec: str, score: float | None, metrics: dict[str, Any]) -> dict[str, Any]:
    """A trial as a record: ``joint`` (the joint spec), ``arch`` (network spec), ``hw_key``, ``hw``
    (the accelerator as a dict), ``score`` and the metrics (``hw`` from ``metrics`` is replaced)."""
    net_arch, spec = space.split(space.parse(joint_spec))
    rest = {k: v for k, v in metrics.items() if k != "hw"}
    return {**rest, "joint": joint_spec, "arch": net_arch.spec, "hw_key": hw_key(spec), "hw": spec.to_dict(),
            "score": score}
