"""hwnas.graph.arch_encode / sketch: an architecture's graph built directly equals encoding its export."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from hwnas.export import arch_to_onnx
from hwnas.graph import ArchEncoder, GraphData, GraphResolver, encode_onnx
from hwnas.graph.sketch import GraphSketch, NodeTemplates
from hwnas.space import MacroSpace, NB201Space
from hwnas.space.macro import OPS as MACRO_OPS
from hwnas.space.macro import RESOLUTIONS, STAGES
from hwnas.space.nb201 import EDGES
from hwnas.space.nb201 import OPS as NB201_OPS
from hwnas.space.nb201 import format_arch


def _differences(direct: GraphData, exported: GraphData) -> list[str]:
    """Fields that differ (arrays: shape, dtype or any element; tuples and ints: equality)."""
    out = []
    for f in ("x", "edge_index", "graph_features"):
        a, b = getattr(direct, f), getattr(exported, f)
        if a.shape != b.shape or a.dtype != b.dtype or not np.array_equal(a, b):
            out.append(f)
    out += [f for f in ("op_types", "node_keys", "node_names", "flops", "params") if getattr(direct, f) != getattr(exported, f)]
    return out


def _distinct_samples(space: NB201Space | MacroSpace, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    specs: dict[str, None] = {}
    while len(specs) < n:
        specs[space.sample(rng).spec] = None
    return list(specs)


def _nb201_archs(space: NB201Space, n_random: int) -> list[str]:
    """``n_random`` distinct random cells, the 5 single-op cells, and cells whose every edge into
    node 1, 2 or 3 (or several of them) is ``none``, the rest drawn at random."""
    rng = np.random.default_rng(201)
    specs = _distinct_samples(space, n_random, 201)
    specs += [format_arch([o] * len(EDGES)) for o in range(len(NB201_OPS))]
    into = {node: [e for e, (dst, _) in enumerate(EDGES) if dst == node] for node in (1, 2, 3)}
    for r in (1, 2, 3):
        for nodes in itertools.combinations((1, 2, 3), r):
            for _ in range(3):
                ops = rng.integers(0, len(NB201_OPS), size=len(EDGES))
                for node in nodes:
                    ops[into[node]] = 0  # none
                specs.append(format_arch(ops))
    return list(dict.fromkeys(specs))


def _macro_archs(space: MacroSpace, n_random: int) -> list[str]:
    """``n_random`` distinct random networks and the extremes: every resolution with the smallest
    and the largest stages, and deep stages of skips, each op in turn."""
    specs = _distinct_samples(space, n_random, 202)
    for res in RESOLUTIONS:
        specs.append(f"{res}|" + "|".join(f"{w[0]}:k3e1" for _, w in STAGES))
        specs.append(f"{res}|" + "|".join(f"{w[-1]}:k7e6-k7e6-k7e6-k7e6" for _, w in STAGES))
    for op in MACRO_OPS[:-1]:
        specs.append("160|" + "|".join(f"{w[1]}:{op}-skip-{op}-skip" for _, w in STAGES))
    return list(dict.fromkeys(space.parse(s).spec for s in specs))


def test_direct_encoding_equals_export() -> None:
    """40 random architectures of each space and the edge cases: every field equal, exactly.

    The exports run once, in a pool of two processes (about 0.2 s a network, more on a loaded
    machine); this is the one test that pays for them, so keep it the only one and keep it small
    (the edge cases cover every op at every position; the random ones, their mixtures).
    """
    items = [(None, "nb201", s) for s in _nb201_archs(NB201Space(), 40)]
    items += [(None, "macro", s) for s in _macro_archs(MacroSpace(), 40)]
    exported = GraphResolver(None, direct=False).graphs_for(items, workers=2)
    direct = GraphResolver(None).graphs_for(items)
    wrong = [(f"{sp}:{arch}", d) for (_, sp, arch), a, b in zip(items, direct, exported) if (d := _differences(a, b))]
    assert not wrong, f"{len(wrong)} of {len(items)} differ, e.g. {wrong[:3]}"
    spaces = [sp for _, sp, _ in items]
    assert spaces.count("nb201") > 40 + 5 + 15 and spaces.count("macro") > 40 + 8


def test_other_space_settings_and_one_encoder_for_both_spaces() -> None:
    """Non-default constructor settings change every shape; one encoder serves both spaces."""
    enc = ArchEncoder()
    nb = NB201Space(channels=8, cells_per_stage=2, num_classes=5, resolution=16)
    macro = MacroSpace(num_classes=7)
    rng = np.random.default_rng(3)
    for space in (nb, macro, nb, macro):
        arch = space.sample(rng)
        assert _differences(enc.encode(space, arch), encode_onnx(arch_to_onnx(space, arch))) == []


def test_unsupported_spaces_are_refused() -> None:
    class OtherNB201(NB201Space):  # a subclass may build another network: no replay for it
        pass

    space = OtherNB201()
    assert ArchEncoder.supports(NB201Space()) and ArchEncoder.supports(MacroSpace())
    assert not ArchEncoder.supports(space)
    with pytest.raises(ValueError, match="^no direct graph encoding for space 'nb201': encode its ONNX export$"):
        ArchEncoder().encode(space, space.from_index(0))


def test_sketch_merges_identical_nodes_and_names_like_the_exporter() -> None:
    templates = NodeTemplates()
    sk = GraphSketch(templates, (1, 4, 8, 8))
    p1 = sk.add("/a", "AveragePool", [sk.input], attrs=(("kernel_shape", (3, 3)), ("pads", (1, 1, 1, 1))))
    p2 = sk.add("/b", "AveragePool", [sk.input], attrs=(("kernel_shape", (3, 3)), ("pads", (1, 1, 1, 1))))
    c1 = sk.add("/c", "Conv", [sk.input], attrs=(("kernel_shape", (1, 1)),), weights=((4, 4, 1, 1),))
    c2 = sk.add("/c", "Conv", [sk.input], attrs=(("kernel_shape", (1, 1)),), weights=((4, 4, 1, 1),))
    s = sk.add("", "Add", [p1, p1])
    assert p1 == p2 and c1 != c2 and sk.shape(s) == (1, 4, 8, 8)
    g = sk.graph()
    assert g.node_names == ("/a/AveragePool", "/c/Conv", "/c/Conv_1", "/Add")
    assert g.edge_index.tolist() == [[0], [3]]  # Add(p, p): one edge
    assert g.params == 2 * 16 and g.flops == 2 * 2 * 16 * 64
    assert len(templates) == 3  # AveragePool, Conv (twice the same signature), Add
    with pytest.raises(ValueError, match=r"^cannot infer the output shape of NoSuchOp with inputs \[\(1, 4, 8, 8\)\]$"):
        sk.add("/bad", "NoSuchOp", [sk.input])
