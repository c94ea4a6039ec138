"""Architecture -> torch -> ONNX export, manifest, and ONNX graph statistics."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper

from hwnas.export import arch_to_onnx, export_archs, read_manifest, write_manifest
from hwnas.onnx_graph import graph_stats
from hwnas.space import MacroSpace, NB201Space


def test_export_is_deterministic_across_processes() -> None:
    space = NB201Space()
    arch = space.from_index(42)
    data = arch_to_onnx(space, arch)
    assert data == arch_to_onnx(space, arch)
    code = (
        "import hashlib,sys; from hwnas.space import NB201Space; from hwnas.export import arch_to_onnx;"
        "s=NB201Space(); sys.stdout.write(hashlib.sha256(arch_to_onnx(s, s.from_index(42))).hexdigest())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert other == hashlib.sha256(data).hexdigest()


def test_export_folder_and_manifest(nb201_candidates) -> None:
    entries = read_manifest(nb201_candidates)
    assert [e["key"] for e in entries] == ["nb201-00000", "nb201-00001", "nb201-00002", "nb201-00003"]
    files = sorted(p.name for p in nb201_candidates.iterdir())
    assert files == ["manifest.jsonl"] + [f"nb201-0000{i}.onnx" for i in range(4)]  # no .onnx.data
    for e in entries:
        path = nb201_candidates / e["file"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == e["sha256"]
        onnx.checker.check_model(onnx.load(path), full_check=True)
        assert e["space"] == "nb201" and e["input_shape"] == [1, 3, 32, 32]
        assert e["flops"] == 2 * e["macs"] > 0 and e["params"] > 0
        assert NB201Space().parse(e["arch"]).spec == e["arch"]


@pytest.mark.parametrize("space,arch_id", [(NB201Space(), 1), (MacroSpace(), 3)], ids=["nb201", "macro"])
def test_onnx_matches_torch(space, arch_id) -> None:
    arch = space.from_index(arch_id) if isinstance(space, NB201Space) else space.sample(np.random.default_rng(arch_id))
    data = arch_to_onnx(space, arch)
    x = np.random.default_rng(0).standard_normal(space.input_shape(arch)).astype(np.float32)
    sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    (y_onnx,) = sess.run(None, {"input": x})
    # rebuild the exported network the same way to compare outputs
    from hwnas.export import _randomize_batchnorm

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(arch.digest(8), 16))
        net = space.to_torch(arch).eval()
        _randomize_batchnorm(net)
    with torch.no_grad():
        y_torch = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(y_onnx, y_torch, rtol=1e-3, atol=1e-4)


def test_params_match_torch_after_bn_folding() -> None:
    space = NB201Space()
    arch = space.decode([3] * 6)
    stats = graph_stats(onnx.load_from_string(arch_to_onnx(space, arch)))
    net = space.to_torch(arch)
    convs_linear = sum(
        p.numel() for m in net.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)) for p in m.parameters()
    )
    n_conv = sum(isinstance(m, torch.nn.Conv2d) for m in net.modules())
    # folded BN adds one bias per conv output channel; the last BN stays (2 x 64 params + 2 x 64 stats)
    assert stats.params > convs_linear
    assert stats.params - convs_linear <= sum(
        m.out_channels for m in net.modules() if isinstance(m, torch.nn.Conv2d)
    ) + 4 * 64 + n_conv


def test_export_resumes_and_skips_existing(tmp_path) -> None:
    space = NB201Space()
    archs = [space.from_index(i) for i in (5, 6)]
    seen = []
    export_archs(space, archs, tmp_path, on_progress=lambda i, k, skipped: seen.append(skipped))
    export_archs(space, archs, tmp_path, on_progress=lambda i, k, skipped: seen.append(skipped))
    assert seen == [False, False, True, True]
    # a damaged file is exported again
    (tmp_path / "nb201-00005.onnx").write_bytes(b"broken")
    seen.clear()
    export_archs(space, archs, tmp_path, on_progress=lambda i, k, skipped: seen.append(skipped))
    assert seen == [False, True]
    onnx.checker.check_model(onnx.load(tmp_path / "nb201-00005.onnx"))


def test_manifest_errors_name_the_line(tmp_path) -> None:
    write_manifest(tmp_path, [{"key": "a"}])
    with open(tmp_path / "manifest.jsonl", "a") as f:
        f.write("{not json\n")
    with pytest.raises(ValueError, match=r"manifest.jsonl:2"):
        read_manifest(tmp_path)
    assert json.loads((tmp_path / "manifest.jsonl").read_text().splitlines()[0]) == {"key": "a"}


def test_graph_stats_counts_conv_gemm_matmul() -> None:
    # Conv 3->8, k3, 1x3x10x10 -> 1x8x8x8, groups 1: 8*8*8 * 3*3*3 MACs; then depthwise 8 groups k3
    w1 = helper.make_tensor("w1", TensorProto.FLOAT, [8, 3, 3, 3], np.zeros(216, np.float32))
    w2 = helper.make_tensor("w2", TensorProto.FLOAT, [8, 1, 3, 3], np.zeros(72, np.float32))
    wm = helper.make_tensor("wm", TensorProto.FLOAT, [288, 5], np.zeros(1440, np.float32))
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"]),
        helper.make_node("Conv", ["a", "w2"], ["b"], group=8),
        helper.make_node("Flatten", ["b"], ["c"]),
        helper.make_node("MatMul", ["c", "wm"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 10, 10])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5])],
        [w1, w2, wm],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    stats = graph_stats(model)
    assert stats.macs == 8 * 8 * 8 * 27 + 8 * 6 * 6 * 9 + 288 * 5
    assert stats.flops == 2 * stats.macs
    assert stats.params == 216 + 72 + 1440
    assert stats.input_shape == (1, 3, 10, 10)
    assert stats.op_counts == {"Conv": 2, "Flatten": 1, "MatMul": 1} and stats.opset == 17
