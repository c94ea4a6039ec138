"""Layer workloads in SCALE-Sim terms: the ``Layer`` record, topology CSV I/O and ONNX extraction.

A :class:`Layer` is one convolution or GEMM as SCALE-Sim sees it (no padding: pass the padded input
size), or a memory-bound step (``kind`` ``pool`` or ``eltwise``, see below), plus ``groups``: the layer is ``groups`` independent, identical sub-problems, each with
``channels / groups`` input channels and ``num_filter / groups`` filters (a depthwise conv has
``groups == channels``; a batched GEMM has ``groups == batch``). A GEMM ``(M x K) @ (K x N)`` is
stored the way SCALE-Sim's ``topology_utils.load_arrays_gemm`` maps it: IFMAP ``M x K``, filter
``1 x K``, 1 channel, ``N`` filters, stride 1.

Memory-bound steps run beside the array, not on it; they are stored in the same record, shaped like
a depthwise layer (``groups == channels == num_filter``): ``pool`` (max/average/global pooling: the
window is the filter, e.g. a global pool of a 7x7 map has a 7x7 filter) and ``eltwise`` (a binary
element-wise op such as a residual ``Add``: filter 1x1, ``inputs`` = the number of full-size
tensors it reads; a constant or broadcast operand does not count). SCALE-Sim has no such layers:
the topology CSV writer leaves them out.

Reference topologies (from SCALE-Sim's own files, see :func:`resnet18` and :func:`mobilenet`) are
shipped as Python data. ``onnx`` is imported lazily inside :func:`layers_from_onnx` only.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from latency_db.fileio import atomic_write

KINDS = ("conv", "gemm", "pool", "eltwise")
#: Kinds that run beside the array, bound by memory traffic.
MEMORY_KINDS = ("pool", "eltwise")
CSV_HEADER = ("Layer name", "IFMAP Height", "IFMAP Width", "Filter Height", "Filter Width",
              "Channels", "Num Filter", "Strides")
_INT_FIELDS = ("ifmap_h", "ifmap_w", "filter_h", "filter_w", "channels", "num_filter", "stride",
               "groups", "inputs")


@dataclass(frozen=True)
class Layer:
    """One conv/GEMM workload (immutable). Sizes are totals over groups; see the module docstring."""

    name: str
    ifmap_h: int
    ifmap_w: int
    filter_h: int
    filter_w: int
    channels: int
    num_filter: int
    stride: int = 1
    groups: int = 1
    kind: str = "conv"
    inputs: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip() or "," in self.name:
            raise ValueError(f"layer name must be a non-empty string without commas, got {self.name!r}")
        for f in _INT_FIELDS:
            v = getattr(self, f)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"layer {self.name}: {f} must be a positive integer, got {v!r}")
        if self.kind not in KINDS:
            raise ValueError(f"layer {self.name}: kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
        if self.filter_h > self.ifmap_h or self.filter_w > self.ifmap_w:
            raise ValueError(f"layer {self.name}: filter {self.filter_h}x{self.filter_w} is larger than "
                             f"the ifmap {self.ifmap_h}x{self.ifmap_w}")
        if self.kind in MEMORY_KINDS and not self.groups == self.channels == self.num_filter:
            raise ValueError(f"layer {self.name}: a {self.kind} step needs groups == channels == num_filter, "
                             f"got {self.groups}, {self.channels}, {self.num_filter}")
        if self.inputs > 1 and self.kind != "eltwise":
            raise ValueError(f"layer {self.name}: only eltwise steps read several inputs, got inputs={self.inputs}")
        if self.channels % self.groups or self.num_filter % self.groups:
            raise ValueError(f"layer {self.name}: channels ({self.channels}) and num_filter "
                             f"({self.num_filter}) must be divisible by groups ({self.groups})")

    @classmethod
    def gemm(cls, name: str, m: int, n: int, k: int, batch: int = 1) -> Layer:
        """``batch`` independent GEMMs ``(m x k) @ (k x n)`` in SCALE-Sim's GEMM-as-conv form."""
        return cls(name, ifmap_h=m, ifmap_w=k, filter_h=1, filter_w=k, channels=batch,
                   num_filter=n * batch, stride=1, groups=batch, kind="gemm")

    @classmethod
    def pool(cls, name: str, h: int, w: int, kernel_h: int, kernel_w: int, channels: int, stride: int = 1) -> Layer:
        """A pooling step over a (padded) ``h x w`` map of ``channels`` channels."""
        return cls(name, h, w, kernel_h, kernel_w, channels, channels, stride, groups=channels, kind="pool")

    @classmethod
    def eltwise(cls, name: str, h: int, w: int, channels: int, inputs: int = 2) -> Layer:
        """An element-wise step reading ``inputs`` tensors of ``channels x h x w`` and writing one."""
        return cls(name, h, w, 1, 1, channels, channels, 1, groups=channels, kind="eltwise", inputs=inputs)

    @property
    def memory_bound(self) -> bool:
        """Whether this is a pooling/element-wise step rather than an array workload."""
        return self.kind in MEMORY_KINDS

    @property
    def ofmap_h(self) -> int:
        """Output rows as SCALE-Sim counts them: ``ceil((ifmap_h - filter_h + stride) / stride)``.

        That is ``topology_utils.topo_calc_hyperparams``; it counts a partial last window, so it is
        one more than the usual ``(ifmap_h - filter_h) // stride + 1`` when ``stride`` does not
        divide ``ifmap_h - filter_h`` (ResNet-18's Conv1 in SCALE-Sim's file: 110, not 109).
        """
        return -(-(self.ifmap_h - self.filter_h + self.stride) // self.stride)

    @property
    def ofmap_w(self) -> int:
        """Output columns, as :attr:`ofmap_h`."""
        return -(-(self.ifmap_w - self.filter_w + self.stride) // self.stride)

    @property
    def ofmap_px(self) -> int:
        """Output pixels per filter (GEMM M)."""
        return self.ofmap_h * self.ofmap_w

    @property
    def window(self) -> int:
        """Conv window per group, ``filter_h * filter_w * channels / groups`` (GEMM K)."""
        return self.filter_h * self.filter_w * (self.channels // self.groups)

    @property
    def filters_per_group(self) -> int:
        """Filters per group (GEMM N)."""
        return self.num_filter // self.groups

    @property
    def macs(self) -> int:
        """Multiply-accumulates of the whole layer (0 for a memory-bound step)."""
        if self.memory_bound:
            return 0
        return self.groups * self.ofmap_px * self.window * self.filters_per_group


# ----------------------------------------------------------------------------- topology CSV


def write_topology_csv(path: str | os.PathLike[str], layers: Iterable[Layer],
                       expand_groups: bool = False) -> Path:
    """Write ``layers`` as a SCALE-Sim conv topology CSV (atomically).

    Format: the header ``Layer name, IFMAP Height, ..., Strides,`` and one row per layer, each
    field followed by ``", "`` and a trailing comma, as in SCALE-Sim's ``topologies/`` files.
    A depthwise conv (``groups == channels``) is written the way SCALE-Sim's ``load_arrays_conv``
    expands it: a name containing ``DP`` (``_DP`` is appended if absent), all channels and the
    per-group filter count. Other grouped layers have no SCALE-Sim form: they raise ``ValueError``
    unless ``expand_groups`` writes one row per group (``<name>_g<i>``). GEMM layers are written in
    their conv form. Memory-bound steps (``pool``, ``eltwise``) are left out. A non-depthwise layer whose name contains ``DP`` raises (SCALE-Sim would
    expand it).
    """
    lines = [", ".join(CSV_HEADER) + ","]
    for layer in layers:
        if layer.memory_bound:
            continue
        rows: list[tuple[str, int]] = []  # (name, channels) with filters per group
        depthwise = layer.groups > 1 and layer.groups == layer.channels and layer.kind == "conv"
        if "DP" in layer.name and not depthwise:
            raise ValueError(f"layer {layer.name}: names containing 'DP' mark depthwise layers in "
                             "SCALE-Sim; rename this non-depthwise layer")
        if depthwise:
            name = layer.name if "DP" in layer.name else f"{layer.name}_DP"
            rows.append((name, layer.channels))
        elif layer.groups == 1:
            rows.append((layer.name, layer.channels))
        elif expand_groups:
            rows += [(f"{layer.name}_g{i}", layer.channels // layer.groups) for i in range(layer.groups)]
        else:
            raise ValueError(f"layer {layer.name}: groups={layer.groups} is neither 1 nor depthwise; "
                             "SCALE-Sim CSV cannot express it (pass expand_groups=True)")
        for name, ch in rows:
            vals = [layer.ifmap_h, layer.ifmap_w, layer.filter_h, layer.filter_w, ch,
                    layer.filters_per_group, layer.stride]
            lines.append(", ".join([name] + [str(v) for v in vals]) + ",")
    path = Path(path)
    atomic_write(path, "\n".join(lines) + "\n")
    return path


def read_topology_csv(path: str | os.PathLike[str]) -> list[Layer]:
    """Read a SCALE-Sim conv topology CSV.

    Tolerant like SCALE-Sim: the first non-blank line is the header; blank lines, surrounding
    spaces/tabs, a trailing comma and extra columns after ``Strides`` (e.g. ``Target``, sparsity,
    ``#dw`` comments) are ignored. A name containing ``DP`` is a depthwise layer (SCALE-Sim's rule):
    ``groups = channels`` and ``num_filter = channels * filters``. Malformed rows raise a one-line
    ``ValueError`` naming the file and line.
    """
    path = Path(path)
    layers: list[Layer] = []
    header_seen = False
    for lineno, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        fields = [f.strip() for f in raw.strip().split(",")]
        while fields and fields[-1] == "":
            fields.pop()
        if not fields:
            continue
        if not header_seen:
            header_seen = True
            if not _is_int(fields[1] if len(fields) > 1 else ""):
                continue
        if len(fields) < 8:
            raise ValueError(f"{path}:{lineno}: expected 8 fields ({', '.join(CSV_HEADER)}), "
                             f"got {len(fields)}: {raw.strip()!r}")
        vals = []
        for title, text in zip(CSV_HEADER[1:], fields[1:8]):
            if not _is_int(text):
                raise ValueError(f"{path}:{lineno}: {title} is {text!r}, not an integer")
            vals.append(int(text))
        name = fields[0]
        h, w, fh, fw, ch, nf, stride = vals
        try:
            if "DP" in name:
                layers.append(Layer(name, h, w, fh, fw, ch, nf * ch, stride, groups=ch))
            else:
                layers.append(Layer(name, h, w, fh, fw, ch, nf, stride))
        except ValueError as exc:
            raise ValueError(f"{path}:{lineno}: {exc}") from None
    return layers


def _is_int(text: str) -> bool:
    try:
        int(text)
    except ValueError:
        return False
    return True


# ----------------------------------------------------------------------------- ONNX


def layers_from_onnx(model: str | os.PathLike[str] | Any, include_padding: bool = True,
                     memory_steps: bool = True) -> list[Layer]:
    """Conv (incl. grouped/depthwise), Gemm and MatMul workloads of an ONNX model, in graph order,
    and (``memory_steps``) its pooling and binary element-wise steps.

    Shapes come from ``onnx.shape_inference``; unknown (symbolic) dims count as 1, so a dynamic
    batch gives per-sample workloads. Conv: with ``include_padding`` the IFMAP size is the padded
    extent the outputs read, ``(out - 1) * stride + kernel`` (rows of padding no window touches are
    dropped), so SCALE-Sim's output size equals the model's; without it, the unpadded input size
    (the convention of SCALE-Sim's topology files). Strides must be equal in both directions and
    dilation 1. Gemm honours ``transA``/``transB``. MatMul with a 2-D right operand folds the
    left operand's leading dims into M; with both operands batched it becomes ``batch`` GEMMs.
    Memory-bound steps: ``MaxPool``/``AveragePool`` (padded like a conv), ``GlobalAveragePool``/
    ``GlobalMaxPool`` (the window is the whole map) as ``pool``; ``Add``/``Sub``/``Mul``/``Div``/``Sum``
    as ``eltwise`` reading the inputs that are full-size graph tensors (initializers, ``Constant``
    outputs and broadcast operands are not traffic). Unary element-wise ops (``Relu``, ``Clip``,
    ``BatchNormalization``, ...) are taken as fused into the producing layer's output stage, as
    accelerators do, and are not returned.

    Args:
        model: path to an ``.onnx`` file or an ``onnx.ModelProto``.
    Raises:
        ImportError: ``onnx`` is not installed. ValueError: an unsupported or shapeless node.
    """
    try:
        import onnx
        from onnx import helper, numpy_helper, shape_inference  # noqa: F401
    except ImportError:
        raise ImportError("layers_from_onnx needs the onnx package: pip install onnx") from None
    proto = onnx.load(os.fspath(model)) if isinstance(model, (str, os.PathLike)) else model
    proto = shape_inference.infer_shapes(proto)
    graph = proto.graph
    shapes: dict[str, list[int]] = {}
    for vi in list(graph.input) + list(graph.value_info) + list(graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            shapes[vi.name] = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else 1
                               for d in t.shape.dim]
    for init in graph.initializer:
        shapes[init.name] = list(init.dims)

    def shape(node: Any, idx: int) -> list[int]:
        name = node.input[idx]
        if name not in shapes:
            raise ValueError(f"ONNX node {node.name or node.op_type}: no shape for input {name!r}")
        return shapes[name]

    constants = {init.name for init in graph.initializer}
    layers: list[Layer] = []
    for i, node in enumerate(graph.node):
        lname = (node.name or f"{node.op_type}_{i}").replace(",", "_")
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Constant":
            constants.update(node.output)
        elif memory_steps and node.op_type in _POOLS + _ELTWISE:
            layers.append(_memory_step(node, lname, attrs, shapes, constants, include_padding))
        elif node.op_type == "Conv":
            x, w = shape(node, 0), shape(node, 1)
            if len(x) != 4:
                raise ValueError(f"ONNX node {lname}: only 2-D convs are supported, input shape {x}")
            group = int(attrs.get("group", 1))
            kh, kw = w[2], w[3]
            strides = list(attrs.get("strides", [1, 1]))
            if strides[0] != strides[1]:
                raise ValueError(f"ONNX node {lname}: strides {strides} differ; SCALE-Sim has one stride")
            if any(d != 1 for d in attrs.get("dilations", [1, 1])):
                raise ValueError(f"ONNX node {lname}: dilated convs are not supported")
            pads = list(attrs.get("pads", [0, 0, 0, 0]))
            if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
                y = shapes.get(node.output[0])
                if y is None:
                    raise ValueError(f"ONNX node {lname}: auto_pad needs an inferred output shape")
                ph = max((y[2] - 1) * strides[0] + kh - x[2], 0)
                pw = max((y[3] - 1) * strides[1] + kw - x[3], 0)
                pads = [ph // 2, pw // 2, ph - ph // 2, pw - pw // 2]
            h, wd = x[2], x[3]
            if include_padding:
                # the extent the model's outputs actually read, so SCALE-Sim's ceil gives its outputs
                st = int(strides[0])
                h = ((h + pads[0] + pads[2] - kh) // st) * st + kh
                wd = ((wd + pads[1] + pads[3] - kw) // st) * st + kw
            layers.append(Layer(lname, h, wd, kh, kw, channels=x[1], num_filter=w[0],
                                stride=int(strides[0]), groups=group))
        elif node.op_type == "Gemm":
            a, b = shape(node, 0), shape(node, 1)
            m, k = (a[1], a[0]) if attrs.get("transA", 0) else (a[0], a[1])
            n = b[0] if attrs.get("transB", 0) else b[1]
            layers.append(Layer.gemm(lname, m, n, k))
        elif node.op_type == "MatMul":
            a, b = shape(node, 0), shape(node, 1)
            if len(a) < 2 or len(b) < 2:
                raise ValueError(f"ONNX node {lname}: 1-D MatMul operands are not supported")
            k, n = b[-2], b[-1]
            if len(b) == 2:
                m = 1
                for d in a[:-1]:
                    m *= d
                layers.append(Layer.gemm(lname, m, n, k))
            else:
                batch = 1
                lead_a, lead_b = a[:-2], b[:-2]
                for j in range(max(len(lead_a), len(lead_b))):
                    da = lead_a[-1 - j] if j < len(lead_a) else 1
                    db = lead_b[-1 - j] if j < len(lead_b) else 1
                    batch *= max(da, db)
                layers.append(Layer.gemm(lname, a[-2], n, k, batch=batch))
    return layers


_POOLS = ("MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool")
_ELTWISE = ("Add", "Sub", "Mul", "Div", "Sum")


def _chw(shape: list[int]) -> tuple[int, int, int]:
    """(channels, h, w) of a per-sample tensor shape ``[N, C, ...]`` (trailing dims folded into h)."""
    if len(shape) < 2:
        return 1, 1, max(int(shape[0]) if shape else 1, 1)
    c = int(shape[1])
    h = 1
    for d in shape[2:-1]:
        h *= int(d)
    w = int(shape[-1]) if len(shape) > 2 else 1
    return c, h, w


def _memory_step(node: Any, lname: str, attrs: dict[str, Any], shapes: dict[str, list[int]],
                 constants: set[str], include_padding: bool) -> Layer:
    """The ``pool``/``eltwise`` :class:`Layer` of one ONNX node (see :func:`layers_from_onnx`)."""
    out = shapes.get(node.output[0])
    if node.op_type in _POOLS:
        x = shapes.get(node.input[0])
        if x is None or len(x) != 4:
            raise ValueError(f"ONNX node {lname}: pooling needs a 4-D input with a known shape, got {x}")
        c, h, w = x[1], x[2], x[3]
        if node.op_type.startswith("Global"):
            return Layer.pool(lname, h, w, h, w, c, stride=1)
        kh, kw = (list(attrs.get("kernel_shape", [1, 1])) + [1])[:2]
        strides = list(attrs.get("strides", [1, 1]))
        if strides[0] != strides[1]:
            raise ValueError(f"ONNX node {lname}: strides {strides} differ; one stride is supported")
        st = int(strides[0])
        pads = list(attrs.get("pads", [0, 0, 0, 0]))
        if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID") and out is not None:
            ph, pw = max((out[2] - 1) * st + kh - h, 0), max((out[3] - 1) * st + kw - w, 0)
            pads = [ph // 2, pw // 2, ph - ph // 2, pw - pw // 2]
        if include_padding:
            h = ((h + pads[0] + pads[2] - kh) // st) * st + kh
            w = ((w + pads[1] + pads[3] - kw) // st) * st + kw
        return Layer.pool(lname, max(h, kh), max(w, kw), kh, kw, c, stride=st)
    if out is None:
        raise ValueError(f"ONNX node {lname}: no inferred output shape for an element-wise op")
    c, h, w = _chw(out)
    size = c * h * w
    inputs = 0
    for name in node.input:
        if name and name not in constants and name in shapes:
            ic, ih, iw = _chw(shapes[name])
            inputs += int(ic * ih * iw == size)
    return Layer.eltwise(lname, h, w, c, inputs=max(inputs, 1))


# ----------------------------------------------------------------------------- reference topologies

# scalesim-project/SCALE-Sim, topologies/conv_nets/Resnet18.csv
# (commit a1a1a2a0a457282f4ae3e6a87d8d284437740a5b),
# columns: name, IFMAP H, IFMAP W, Filter H, Filter W, Channels, Num Filter, Stride ("Target" column dropped).
_RESNET18 = (
    ("Conv1", 224, 224, 7, 7, 3, 64, 2), ("Conv2_1a", 56, 56, 3, 3, 64, 64, 1),
    ("Conv2_1b", 56, 56, 3, 3, 64, 64, 1), ("Conv2_2a", 56, 56, 3, 3, 64, 64, 1),
    ("Conv2_2b", 56, 56, 3, 3, 64, 64, 1), ("Conv3_1a", 56, 56, 3, 3, 64, 128, 2),
    ("Conv3_1b", 28, 28, 3, 3, 128, 128, 1), ("Conv3_s", 56, 56, 1, 1, 64, 128, 2),
    ("Conv3_2a", 28, 28, 3, 3, 128, 128, 1), ("Conv3_2b", 28, 28, 3, 3, 128, 128, 1),
    ("Conv4_1a", 28, 28, 3, 3, 128, 256, 2), ("Conv4_1b", 14, 14, 3, 3, 256, 256, 1),
    ("Conv4_s", 28, 28, 1, 1, 128, 256, 2), ("Conv4_2a", 14, 14, 3, 3, 256, 256, 1),
    ("Conv4_2b", 14, 14, 3, 3, 256, 256, 1), ("Conv5_1a", 14, 14, 3, 3, 256, 512, 2),
    ("Conv5_1b", 7, 7, 3, 3, 512, 512, 1), ("Conv5_s", 14, 14, 1, 1, 256, 512, 2),
    ("Conv5_2a", 7, 7, 3, 3, 512, 512, 1), ("Conv5_2b", 7, 7, 3, 3, 512, 512, 1),
    ("FC", 1, 1, 1, 1, 512, 1000, 1),
)

# ARM-software/SCALE-Sim, topologies/mobilenet.csv (commit 6a56dade549a78b4ade3da5016d4fd986fc4bb5a).
# That file writes the depthwise 3x3 layers as plain convs with C channels and 1 filter (no "DP"
# marker), which is how SCALE-Sim simulates them; kept verbatim, including Conv26's stride 2 at 7x7.
_MOBILENET = (
    ("Conv1", 224, 224, 3, 3, 3, 32, 2), ("Conv2", 112, 112, 3, 3, 32, 1, 1),
    ("Conv3", 112, 112, 1, 1, 32, 64, 1), ("Conv4", 112, 112, 3, 3, 64, 1, 2),
    ("Conv5", 56, 56, 1, 1, 64, 128, 1), ("Conv6", 56, 56, 3, 3, 128, 1, 1),
    ("Conv7", 56, 56, 1, 1, 128, 128, 1), ("Conv8", 56, 56, 3, 3, 128, 1, 2),
    ("Conv9", 28, 28, 1, 1, 128, 256, 1), ("Conv10", 28, 28, 3, 3, 256, 1, 1),
    ("Conv11", 28, 28, 1, 1, 256, 256, 1), ("Conv12", 28, 28, 3, 3, 256, 1, 2),
    ("Conv13", 14, 14, 1, 1, 256, 512, 1), ("Conv14", 14, 14, 3, 3, 512, 1, 1),
    ("Conv15", 14, 14, 1, 1, 512, 512, 1), ("Conv16", 14, 14, 3, 3, 512, 1, 1),
    ("Conv17", 14, 14, 1, 1, 512, 512, 1), ("Conv18", 14, 14, 3, 3, 512, 1, 1),
    ("Conv19", 14, 14, 1, 1, 512, 512, 1), ("Conv20", 14, 14, 3, 3, 512, 1, 1),
    ("Conv21", 14, 14, 1, 1, 512, 512, 1), ("Conv22", 14, 14, 3, 3, 512, 1, 1),
    ("Conv23", 14, 14, 1, 1, 512, 512, 1), ("Conv24", 14, 14, 3, 3, 512, 1, 2),
    ("Conv25", 7, 7, 1, 1, 512, 1024, 1), ("Conv26", 7, 7, 3, 3, 1024, 1, 2),
    ("Conv27", 7, 7, 1, 1, 1024, 1024, 1),
)


def resnet18() -> list[Layer]:
    """ResNet-18 at 224x224 as SCALE-Sim ships it (``topologies/conv_nets/Resnet18.csv``, 21 layers).

    Source: github.com/scalesim-project/SCALE-Sim, commit a1a1a2a0, without its ``Target`` column.
    IFMAP sizes are unpadded, as in SCALE-Sim's file (e.g. Conv1 gives a 109x109 output).
    """
    return [Layer(*row) for row in _RESNET18]


def mobilenet() -> list[Layer]:
    """MobileNet (v1) at 224x224 as SCALE-Sim ships it (``topologies/mobilenet.csv``, 27 layers).

    Source: github.com/ARM-software/SCALE-Sim, commit 6a56dade. Depthwise layers appear, as in that
    file, as convs with C channels and a single filter (groups=1), so cycles match SCALE-Sim's run.
    """
    return [Layer(*row) for row in _MOBILENET]


__all__ = ["CSV_HEADER", "KINDS", "Layer", "layers_from_onnx", "mobilenet", "read_topology_csv",
           "resnet18", "write_topology_csv"]
