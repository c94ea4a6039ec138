"""hwnas.graph: ONNX -> GraphData encoding, the .npz cache, the resolver, PyG batches."""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import require_module
from onnx import TensorProto, helper

from hwnas.export import arch_to_onnx, read_manifest
from hwnas.graph import (
    ENCODER_VERSION,
    GRAPH_FEATURES,
    NODE_FEATURES,
    OP_VOCAB,
    FeatureScaler,
    GraphCache,
    GraphData,
    GraphResolver,
    default_cache_dir,
    encode_onnx,
    to_pyg,
)
from hwnas.graph import cache as cache_module
from hwnas.onnx_graph import graph_stats
from hwnas.predictors.base import PredictorError
from hwnas.space import NB201Space

COL = {name: i for i, name in enumerate(NODE_FEATURES)}
GCOL = {name: i for i, name in enumerate(GRAPH_FEATURES)}


def _init(name: str, dims: list[int], seed: int = 0) -> onnx.TensorProto:
    data = np.random.default_rng(seed).standard_normal(int(np.prod(dims))).astype(np.float32)
    return helper.make_tensor(name, TensorProto.FLOAT, dims, data)


def _model(nodes, inputs, outputs, inits, domains=()) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    opsets = [helper.make_opsetid("", 17)] + [helper.make_opsetid(d, 1) for d in domains]
    return helper.make_model(graph, opset_imports=opsets)


@pytest.fixture(scope="module")
def small_model() -> onnx.ModelProto:
    """Conv -> Relu -> Identity -> Add (skip from Conv) -> GlobalAveragePool -> Flatten -> Gemm."""
    nodes = [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("Identity", ["r"], ["i"]),
        helper.make_node("Add", ["i", "c"], ["a"]),
        helper.make_node("GlobalAveragePool", ["a"], ["p"]),
        helper.make_node("Flatten", ["p"], ["f"]),
        helper.make_node("Gemm", ["f", "wg", "bg"], ["y"], transB=1),
    ]
    return _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [_init("w", [4, 3, 3, 3]), _init("b", [4]), _init("wg", [2, 4]), _init("bg", [2])],
    )


@pytest.fixture(scope="module")
def nb201_graph() -> tuple[bytes, GraphData]:
    space = NB201Space()
    data = arch_to_onnx(space, space.from_index(1))
    return data, encode_onnx(data)


# -- encode ----------------------------------------------------------------------------------------


def test_feature_names() -> None:
    assert NODE_FEATURES[: len(OP_VOCAB)] == tuple(f"op_{op}" for op in OP_VOCAB)
    assert NODE_FEATURES[len(OP_VOCAB)] == "op_other" and len(set(NODE_FEATURES)) == len(NODE_FEATURES)
    assert {"flops", "params", "bytes", "num_nodes", "depth", "input_h", "input_w", "count_Conv"} <= set(GRAPH_FEATURES)
    assert len(set(GRAPH_FEATURES)) == len(GRAPH_FEATURES) and isinstance(ENCODER_VERSION, int)


def test_encode_small_graph(small_model) -> None:
    g = encode_onnx(small_model)
    assert g.op_types == ("Conv", "Relu", "Add", "GlobalAveragePool", "Flatten", "Gemm")  # Identity bypassed
    assert g.x.dtype == np.float32 and g.x.shape == (6, len(NODE_FEATURES))
    assert g.edge_index.dtype == np.int64
    assert sorted(map(tuple, g.edge_index.T.tolist())) == [(0, 1), (0, 2), (1, 2), (2, 3), (3, 4), (4, 5)]
    for i, op in enumerate(g.op_types):  # exactly one one-hot column per node, the right one
        onehot = g.x[i, : len(OP_VOCAB) + 1]
        assert onehot.sum() == 1 and onehot[COL[f"op_{op}"]] == 1
    conv = dict(zip(NODE_FEATURES, g.x[0].astype(np.float64)))
    logged = ("kernel_h", "kernel_w", "stride", "in_channels", "out_channels", "out_h", "out_w", "flops", "params", "bytes")
    raw = {k: math.expm1(conv[k]) for k in logged}
    assert raw == pytest.approx(
        {"kernel_h": 3, "kernel_w": 3, "stride": 1, "in_channels": 3, "out_channels": 4, "out_h": 8, "out_w": 8,
         "flops": 2 * 4 * 8 * 8 * 27, "params": 108 + 4, "bytes": 4 * (192 + 256 + 112)}, rel=1e-5,
    )  # fmt: skip
    assert conv["log2_groups"] == 0 and conv["is_depthwise"] == 0 and conv["num_inputs"] == 3
    assert g.node_keys == (
        "Conv|k3x3|s1|g1|c3>4|8x8",
        "Relu|c4|8x8",
        "Add|c4|8x8",
        "GlobalAveragePool|k8x8|s1|c4|1x1",
        "Flatten|c4|1|from4x1x1",
        "Gemm|c4>2|m1",
    )
    stats = graph_stats(small_model)
    assert (g.flops, g.params) == (stats.flops, stats.params) == (2 * (4 * 64 * 27 + 8), 108 + 4 + 8 + 2)
    gf = dict(zip(GRAPH_FEATURES, g.graph_features.tolist()))
    assert gf["flops"] == stats.flops and gf["params"] == stats.params
    assert (gf["num_nodes"], gf["depth"], gf["input_h"], gf["input_w"]) == (6, 6, 8, 8)
    assert gf["count_Conv"] == 1 and gf["count_Add"] == 1 and gf["count_other"] == 0
    assert gf["flops_conv"] == 2 * 4 * 64 * 27 and gf["flops_gemm"] == 16 and gf["flops_dwconv"] == 0
    assert gf["flops_other"] == 256 + 256 + 256  # Relu, Add, GlobalAveragePool (4 x 8x8); Flatten moves data
    assert 0 < gf["bytes_memory_bound"] < gf["bytes"]


def test_encode_unknown_ops_matmul_concat_constant() -> None:
    nodes = [
        helper.make_node("MatMul", ["x", "wm"], ["m"]),
        helper.make_node("Erf", ["m"], ["e"]),
        helper.make_node("Concat", ["m", "e"], ["c"], axis=1),
        helper.make_node("Constant", [], ["k"], value=helper.make_tensor("k", TensorProto.FLOAT, [], [2.0])),
        helper.make_node("Mul", ["c", "k"], ["y"]),
        helper.make_node("MyOp", ["y"], ["z"], domain="com.example"),
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("z", TensorProto.FLOAT, None)],
        [_init("wm", [4, 6])],
        domains=("com.example",),
    )
    g = encode_onnx(model.SerializeToString())  # bytes are accepted too
    assert g.op_types == ("MatMul", "Erf", "Concat", "Mul", "MyOp")  # Constant folded away
    assert g.x[1, COL["op_other"]] == 1 and g.x[4, COL["op_other"]] == 1 and g.x[2, COL["op_Concat"]] == 1
    assert sorted(map(tuple, g.edge_index.T.tolist())) == [(0, 1), (0, 2), (1, 2), (2, 3), (3, 4)]
    mm = dict(zip(NODE_FEATURES, g.x[0].astype(np.float64)))
    assert math.expm1(mm["flops"]) == pytest.approx(2 * 4 * 6) and math.expm1(mm["params"]) == pytest.approx(24)
    assert math.expm1(mm["in_channels"]) == pytest.approx(4) and math.expm1(mm["out_channels"]) == pytest.approx(6)
    assert g.node_keys[:4] == ("MatMul|c4>6|m1", "Erf|c6|1", "Concat|c12|1|from6", "Mul|c12|1")
    assert g.x[3, COL["num_inputs"]] == 2  # Mul reads the Constant as a weight input
    stats = graph_stats(model)
    assert (g.flops, g.params) == (stats.flops, stats.params)
    gf = dict(zip(GRAPH_FEATURES, g.graph_features.tolist()))
    assert gf["count_other"] == 2 and gf["count_MatMul"] == 1 and gf["depth"] == 5


def test_depthwise_conv_is_flagged() -> None:
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["a", "w2"], ["y"], group=8, strides=[2, 2], pads=[1, 1, 1, 1]),
    ]
    model = _model(
        nodes,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, 5, 5])],
        [_init("w1", [8, 3, 3, 3]), _init("w2", [8, 1, 3, 3])],
    )
    g = encode_onnx(model)
    assert g.x[:, COL["is_depthwise"]].tolist() == [0, 1]
    assert g.x[1, COL["log2_groups"]] == 3 and math.expm1(g.x[1, COL["stride"]]) == pytest.approx(2)
    assert math.expm1(g.x[0, COL["kernel_h"]]) == pytest.approx(3)  # from the weight when no kernel_shape
    assert g.node_keys == ("Conv|k3x3|s1|g1|c3>8|10x10", "Conv|k3x3|s2|g8|c8>8|5x5")
    gf = dict(zip(GRAPH_FEATURES, g.graph_features.tolist()))
    assert gf["flops_dwconv"] == 2 * 8 * 25 * 9 and gf["flops_conv"] == 2 * 8 * 100 * 27
    assert g.flops == graph_stats(model).flops == gf["flops_conv"] + gf["flops_dwconv"]


def test_encode_nb201(nb201_graph) -> None:
    data, g = nb201_graph
    stats = graph_stats(onnx.load_from_string(data))
    assert (g.flops, g.params) == (stats.flops, stats.params)
    assert g.num_nodes == stats.nodes - stats.op_counts.get("Constant", 0) - stats.op_counts.get("Identity", 0)
    assert np.isfinite(g.x).all() and g.edge_index.max() < g.num_nodes
    assert g.graph_features[GCOL["count_Conv"]] == stats.op_counts["Conv"]
    assert g.graph_features[GCOL["input_h"]] == 32 and g.node_keys[0] == "Conv|k3x3|s1|g1|c3>16|32x32"
    again = encode_onnx(data)  # the same arch encodes identically
    assert _same(g, again)
    space = NB201Space()
    spec = space.from_index(1).spec  # |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|...
    assert spec.startswith("|nor_conv_3x3~0|")
    other = encode_onnx(arch_to_onnx(space, space.parse(spec.replace("nor_conv_3x3~0", "nor_conv_1x1~0", 1))))
    assert other.num_nodes == g.num_nodes and other.op_types == g.op_types
    assert other.node_keys != g.node_keys and not np.array_equal(other.x, g.x) and other.flops < g.flops


def _same(a: GraphData, b: GraphData) -> bool:
    return (
        np.array_equal(a.x, b.x)
        and np.array_equal(a.edge_index, b.edge_index)
        and np.array_equal(a.graph_features, b.graph_features)
        and a.op_types == b.op_types
        and a.node_keys == b.node_keys
        and (a.flops, a.params) == (b.flops, b.params)
    )


# -- cache -----------------------------------------------------------------------------------------


def test_cache_round_trip(tmp_path, small_model, monkeypatch) -> None:
    g = encode_onnx(small_model)
    cache = GraphCache(tmp_path / "graphs")
    sha = hashlib.sha256(small_model.SerializeToString()).hexdigest()
    assert cache.get(sha) is None
    path = cache.put(sha, g)
    assert path == tmp_path / "graphs" / f"{sha}.npz"
    loads = []
    real_load = np.load
    monkeypatch.setattr(cache_module.np, "load", lambda *a, **kw: loads.append(kw) or real_load(*a, **kw))
    back = cache.get(sha)
    assert back is not None and _same(g, back) and back.x.dtype == np.float32
    assert cache.get(sha.upper()) is not None  # sha256 keys are case-insensitive
    assert loads and all(kw.get("allow_pickle") is False for kw in loads)
    # "space:arch" keys get a hashed, file-name-safe name
    arch_path = cache.put("nb201:|a~0|+|b~0|c~1|", g)
    assert arch_path.parent == cache.folder and arch_path.name.startswith("k-") and "|" not in arch_path.name
    assert _same(cache.get("nb201:|a~0|+|b~0|c~1|"), g) and cache.get("nb201:|other|") is None
    # an empty graph survives too
    empty = GraphData(np.zeros((0, len(NODE_FEATURES)), np.float32), np.zeros((2, 0), np.int64),
                      np.zeros(len(GRAPH_FEATURES), np.float32), (), (), 0, 0)  # fmt: skip
    cache.put("empty", empty)
    assert _same(cache.get("empty"), empty)


def test_cache_misses_on_other_version_and_bad_files(tmp_path, small_model, monkeypatch) -> None:
    g = encode_onnx(small_model)
    cache = GraphCache(tmp_path)
    monkeypatch.setattr(cache_module, "ENCODER_VERSION", ENCODER_VERSION + 1)
    cache.put("a" * 64, g)
    monkeypatch.undo()
    assert cache.get("a" * 64) is None  # written by another encoder version
    cache.path("b" * 64).write_bytes(b"not a zip")
    assert cache.get("b" * 64) is None
    # a file that would need pickle to load is never unpickled
    np.savez(cache.path("c" * 64), x=np.array([{"evil": 1}], dtype=object), encoder_version=ENCODER_VERSION)
    assert cache.get("c" * 64) is None
    cache.put("c" * 64, g)  # and the next put replaces it
    assert _same(cache.get("c" * 64), g)


def test_cache_writes_atomically(tmp_path, small_model, monkeypatch) -> None:
    g = encode_onnx(small_model)
    cache = GraphCache(tmp_path)
    key = "d" * 64
    cache.put(key, g)
    before = cache.path(key).read_bytes()

    def broken_savez(file, **arrays):
        file.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(cache_module.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        cache.put(key, g)
    monkeypatch.undo()
    assert cache.path(key).read_bytes() == before  # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{key}.npz"]  # no temp file left behind
    replaced = []
    real_replace = cache_module.os.replace
    monkeypatch.setattr(cache_module.os, "replace", lambda a, b: replaced.append((a, b)) or real_replace(a, b))
    cache.put(key, g)
    assert len(replaced) == 1 and Path(replaced[0][1]) == cache.path(key) and Path(replaced[0][0]).parent == tmp_path


def test_default_cache_dir(monkeypatch, tmp_path) -> None:
    monkeypatch.delenv("HWNAS_CACHE", raising=False)
    assert default_cache_dir() == Path(".hwnas/cache/graphs")
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    assert default_cache_dir() == tmp_path / "graphs"


# -- resolver --------------------------------------------------------------------------------------


def test_resolver_cache_hit(tmp_path, small_model) -> None:
    g = encode_onnx(small_model)
    cache = GraphCache(tmp_path)
    cache.put("e" * 64, g)
    cache.put("nb201:somearch", g)
    resolver = GraphResolver(cache)
    assert _same(resolver.graph_for("E" * 64, None, None), g)
    assert _same(resolver.graph_for("f" * 64, "nb201", "somearch"), g)  # sha misses, "space:arch" hits
    seen = []
    out = resolver.graphs_for([("e" * 64, None, None)] * 3, on_progress=lambda d, t: seen.append((d, t)))
    assert len(out) == 3 and seen == [(3, 3)]


def test_resolver_finds_files_in_model_dirs(tmp_path, nb201_candidates) -> None:
    entries = read_manifest(nb201_candidates)
    cache = GraphCache(tmp_path / "cache")
    resolver = GraphResolver(cache, model_dirs=[nb201_candidates])
    g = resolver.graph_for(entries[1]["sha256"], None, None)
    assert _same(g, encode_onnx(nb201_candidates / entries[1]["file"]))
    assert cache.get(entries[1]["sha256"]) is not None  # cached by sha256
    # a folder without manifest: found by hashing its *.onnx files
    loose = tmp_path / "loose"
    loose.mkdir()
    shutil.copy(nb201_candidates / entries[2]["file"], loose / "model.onnx")
    g2 = GraphResolver(None, model_dirs=[loose]).graph_for(entries[2]["sha256"], "nb201", None)
    assert _same(g2, encode_onnx(loose / "model.onnx"))


def test_resolver_exports_archs(tmp_path, nb201_graph) -> None:
    data, expected = nb201_graph
    spec = NB201Space().from_index(1).spec
    cache = GraphCache(tmp_path)
    seen = []
    resolver = GraphResolver(cache, direct=False)  # the reference path: export through torch
    (g,) = resolver.graphs_for([(None, "nb201", spec)], on_progress=lambda d, t: seen.append((d, t)))
    assert _same(g, expected) and seen == [(1, 1)]
    assert _same(cache.get(hashlib.sha256(data).hexdigest()), g)  # under the sha256 of the export
    assert _same(cache.get(f"nb201:{spec}"), g)  # and under "space:arch"


def test_resolver_builds_archs_directly(tmp_path, nb201_graph) -> None:
    _, expected = nb201_graph
    spec = NB201Space().from_index(1).spec
    cache = GraphCache(tmp_path)
    seen = []
    resolver = GraphResolver(cache)
    items = [(None, "nb201", spec), ("a" * 64, "nb201", spec), (None, "macro", "128|16:k3e1|24:k3e1|48:k3e1|72:k3e1|120:k3e1|240:k3e1")]
    g, g_sha, g_macro = resolver.graphs_for(items, on_progress=lambda d, t: seen.append((d, t)))
    assert _same(g, expected) and _same(g_sha, expected) and seen == [(2, 3), (3, 3)]
    assert g_macro.node_names[-1] == "/classifier/Gemm" and g_macro.graph_features[GCOL["input_h"]] == 128
    assert not list(tmp_path.glob("*.npz"))  # built directly: nothing cached, no sha256 to key it by
    cache.put(f"nb201:{spec}", encode_onnx(_swap_first_conv_key(nb201_graph[0])))
    assert GraphResolver(cache).graph_for(None, "nb201", spec).node_keys[0].startswith("changed|")  # a cached entry still wins


def test_resolver_errors(tmp_path) -> None:
    resolver = GraphResolver(GraphCache(tmp_path), model_dirs=[tmp_path])
    with pytest.raises(PredictorError, match=r"^no ONNX file for model 0123456789ab: pass the folder .* --models DIR$"):
        resolver.graph_for("0123456789ab" + "0" * 52, None, None)
    with pytest.raises(PredictorError, match="neither sha256 nor architecture"):
        resolver.graph_for(None, "nb201", None)
    with pytest.raises(PredictorError, match="cannot export model nb201:nonsense"):
        resolver.graph_for(None, "nb201", "nonsense")
    with pytest.raises(PredictorError, match="unknown space"):
        resolver.graph_for(None, "nope", "x")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.onnx").write_bytes(b"not onnx")
    with pytest.raises(PredictorError, match=r"^cannot encode model .*broken.onnx"):
        GraphResolver(None, model_dirs=[bad]).graph_for(hashlib.sha256(b"not onnx").hexdigest(), None, None)
    changed = tmp_path / "changed"
    changed.mkdir()
    (changed / "m.onnx").write_bytes(b"edited")
    (changed / "manifest.jsonl").write_text('{"key": "m", "file": "m.onnx", "sha256": "' + "2" * 64 + '"}\n')
    with pytest.raises(PredictorError, match="sha256 is not the manifest's"):
        GraphResolver(None, model_dirs=[changed]).graph_for("2" * 64, None, None)
    with pytest.raises(PredictorError, match="does not exist"):
        GraphResolver(None, model_dirs=[tmp_path / "missing"]).graph_for("1" * 64, None, None)


def _swap_first_conv_key(data: bytes) -> onnx.ModelProto:
    """The model with its first node renamed to an op type nobody knows (key "changed...")."""
    model = onnx.load_from_string(data)
    model.graph.node[0].op_type = "changed"
    return model


def test_resolver_workers_match_serial(tmp_path) -> None:
    space = NB201Space()
    items = [(None, "nb201", space.from_index(i).spec) for i in (10, 11, 12, 13, 10)]  # one twice
    serial = GraphResolver(None, direct=False).graphs_for(items)
    assert all(_same(a, b) for a, b in zip(serial, GraphResolver(None).graphs_for(items)))  # direct == export
    seen = []
    cache = GraphCache(tmp_path)
    parallel = GraphResolver(cache, direct=False).graphs_for(items, workers=2, on_progress=lambda d, t: seen.append((d, t)))
    assert len(parallel) == 5 and all(_same(a, b) for a, b in zip(serial, parallel))
    assert _same(parallel[0], parallel[4])
    assert [t for _, t in seen] == [5] * 4 and seen[-1][0] == 5 and sorted(d for d, _ in seen) == [d for d, _ in seen]
    assert len(list(tmp_path.glob("*.npz"))) == 8  # 4 archs x (sha256, "space:arch")
    again = GraphResolver(cache, direct=False).graphs_for(items, workers=2)  # all hits: nothing is encoded
    assert all(_same(a, b) for a, b in zip(serial, again))


# -- batches ---------------------------------------------------------------------------------------


def test_to_pyg_batch(small_model, nb201_graph) -> None:
    torch = require_module("torch")
    graphs = [encode_onnx(small_model), nb201_graph[1]]
    batch = to_pyg(graphs, y=np.array([1.5, 2.5]))
    n = sum(g.num_nodes for g in graphs)
    assert batch.num_graphs == 2
    assert batch.x.dtype == torch.float32 and tuple(batch.x.shape) == (n, len(NODE_FEATURES))
    assert batch.edge_index.dtype == torch.long
    assert tuple(batch.edge_index.shape) == (2, sum(g.edge_index.shape[1] for g in graphs))
    assert int(batch.edge_index.max()) < n
    assert int(batch.edge_index[:, graphs[0].edge_index.shape[1]:].min()) >= graphs[0].num_nodes  # offset per graph
    assert tuple(batch.graph_features.shape) == (2, len(GRAPH_FEATURES))
    assert batch.y.tolist() == [1.5, 2.5] and batch.batch.tolist().count(0) == graphs[0].num_nodes
    with pytest.raises(ValueError, match="rows"):
        to_pyg(graphs, y=np.array([1.0]))


def test_feature_scaler_round_trip(small_model, nb201_graph) -> None:
    graphs = [encode_onnx(small_model), nb201_graph[1]]
    scaler = FeatureScaler().fit(graphs)
    x = np.concatenate([g.x for g in graphs])
    z = scaler.transform_x(x)
    k = len(OP_VOCAB) + 1
    assert z.dtype == np.float32 and np.array_equal(z[:, :k], x[:, :k])  # one-hot columns unscaled
    from hwnas.graph.batch import CLIP, REL_STD_FLOOR

    state = scaler.state()
    unclipped = (np.abs(z[:, k:]) < CLIP).all(axis=0)  # robust scaling clips rare extremes (the rest is standard)
    assert np.allclose(z[:, k:].mean(axis=0)[unclipped], 0, atol=1e-4)
    wide = unclipped & (x[:, k:].std(axis=0) > state["std"][k:] * (1 - 1e-9))  # not at the relative floor
    assert wide.any() and np.allclose(z[:, k:].std(axis=0)[wide], 1, atol=1e-3)
    assert (state["std"][k:] >= REL_STD_FLOOR * np.maximum(np.abs(state["mean"][k:]), 1.0) - 1e-12).all()
    assert np.abs(z).max() <= CLIP  # an unseen value moves a feature by at most CLIP deviations
    back = FeatureScaler.from_state(scaler.state())
    assert np.array_equal(back.transform_x(x), z)
    assert np.array_equal(to_pyg(graphs, scaler=back).x.numpy(), z)
    with pytest.raises(ValueError, match="columns"):
        FeatureScaler.from_state({"mean": np.zeros(3), "std": np.ones(3)})
    with pytest.raises(ValueError, match="not fitted"):
        FeatureScaler().transform_x(x)
