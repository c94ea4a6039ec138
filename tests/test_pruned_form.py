"""The pruned (deployable) form of NB201 cells: same function as the reference, its graph replay,
and the form recorded in the manifest, the model row and the measurement config."""

from __future__ import annotations

import itertools
import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from hwnas.export import _randomize_batchnorm, arch_to_onnx, export_archs, read_manifest
from hwnas.graph import ArchEncoder, GraphResolver, encode_onnx
from hwnas.nets.nb201_net import PrunedNB201Cell
from hwnas.space import NB201Space
from hwnas.space.nb201 import EDGES, OPS, format_arch
from hwnas.space.nb201_cell import CellPlan


def _cells(n_random: int, seed: int = 15) -> list[str]:
    """Random cells plus degenerate ones: every edge into node 1, 2 and/or 3 set to ``none``, the
    all-``none`` cell, a cell whose output is a constant map (conv 3x3 of a conv of zeros), and
    cells with constants folded into a live node."""
    rng = np.random.default_rng(seed)
    cells = [format_arch(rng.integers(0, len(OPS), size=len(EDGES))) for _ in range(n_random)]
    into = {node: [e for e, (dst, _) in enumerate(EDGES) if dst == node] for node in (1, 2, 3)}
    for r in (1, 2, 3):
        for nodes in itertools.combinations((1, 2, 3), r):
            ops = rng.integers(1, len(OPS), size=len(EDGES))
            for node in nodes:
                ops[into[node]] = 0
            cells.append(format_arch(ops))
    cells += [
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|none~0|+|none~0|nor_conv_1x1~1|+|none~0|none~1|nor_conv_3x3~2|",  # output: a constant map
        "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|nor_conv_1x1~1|nor_conv_3x3~2|",  # live + uniform
        "|none~0|+|none~0|nor_conv_3x3~1|+|nor_conv_1x1~0|none~1|nor_conv_3x3~2|",  # live + map
        "|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|",  # nothing reaches the output
    ]
    return list(dict.fromkeys(cells))


def _nets(space: NB201Space, spec: str, seed: int) -> tuple[torch.nn.Module, torch.nn.Module]:
    torch.manual_seed(seed)
    ref = space.to_torch(space.parse(spec)).eval()
    _randomize_batchnorm(ref)
    return ref, ref.pruned(space.input_shape(space.parse(spec)))


def test_plan_of_degenerate_cells() -> None:
    plan = CellPlan.of(["none"] * 6)
    assert plan.live_edges == () and not plan.output_live and plan.const_kind[3] == "zero"
    plan = CellPlan.of(["none", "none", "nor_conv_1x1", "none", "none", "nor_conv_3x3"])
    assert plan.live_edges == () and plan.const_kind[3] == "map" and plan.adds_constant(3)
    plan = CellPlan.of(["nor_conv_3x3", "none", "none", "none", "none", "none"])
    assert plan.live_edges == () and not plan.output_live  # node 1 is live but reaches nothing
    plan = CellPlan.of(["skip_connect", "none", "avg_pool_3x3", "nor_conv_1x1", "none", "none"])
    assert plan.live_edges == (3,) and plan.computed == (3,)  # node 1 and 2 feed nothing
    with pytest.raises(ValueError, match="6 ops"):
        CellPlan.of(["none"] * 5)


def test_pruned_network_computes_the_reference_function() -> None:
    """Same weights, eval mode: torch outputs equal on random and degenerate cells, a small net."""
    space = NB201Space(channels=4, cells_per_stage=1, resolution=16)
    x = torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    for i, spec in enumerate(_cells(10)):
        ref, pruned = _nets(space, spec, i)
        plan = CellPlan.of([OPS[o] for o in space.encode(space.parse(spec))])
        cells = [m for m in pruned.cells if isinstance(m, PrunedNB201Cell)]
        assert len(cells) == 3 and all(set(c.edge_ops) == {str(e) for e in plan.live_edges} for c in cells)
        with torch.no_grad():
            torch.testing.assert_close(pruned(x), ref(x), rtol=1e-4, atol=1e-5, msg=spec)
        dead = {n for n, _ in ref.named_parameters()} - {n for n, _ in pruned.named_parameters()}
        assert all(".edge_ops." in n for n in dead)  # only dead edges' weights are gone


def test_pruned_onnx_equals_reference_onnx_and_its_replay() -> None:
    """Through onnxruntime the two exports give equal outputs; the pruned graph has no ``x * 0``
    (but in a cell whose output does not depend on its input) and its direct encoding is exact."""
    space, enc = NB201Space(channels=8, cells_per_stage=1, resolution=16), ArchEncoder()
    x = np.random.default_rng(1).standard_normal((1, 3, 16, 16)).astype(np.float32)
    for spec in _cells(2, seed=7):
        arch = space.parse(spec)
        ref, pruned = arch_to_onnx(space, arch), arch_to_onnx(space, arch, form="pruned")
        outs = [ort.InferenceSession(d, providers=["CPUExecutionProvider"]).run(None, {"input": x})[0] for d in (ref, pruned)]
        np.testing.assert_allclose(outs[1], outs[0], rtol=1e-4, atol=1e-5, err_msg=spec)
        g = encode_onnx(pruned)
        plan = CellPlan.of([OPS[o] for o in space.encode(arch)])
        assert g.op_types.count("Mul") == (0 if plan.output_live else 3 * space.cells_per_stage), spec
        assert g.flops <= encode_onnx(ref).flops and g.params <= encode_onnx(ref).params
        direct = enc.encode(space, arch, "pruned")
        assert direct.node_names == g.node_names and direct.params == g.params, spec
        assert np.array_equal(direct.x, g.x) and np.array_equal(direct.edge_index, g.edge_index), spec
        assert np.array_equal(direct.graph_features, g.graph_features), spec
    with pytest.raises(ValueError, match="unknown form"):
        arch_to_onnx(space, space.from_index(0), form="fast")


def test_resolver_builds_the_form_it_is_given() -> None:
    arch = "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    ref = GraphResolver(None).graph_for(None, "nb201", arch)
    pruned = GraphResolver(None, form="pruned").graph_for(None, "nb201", arch)
    assert "Mul" in ref.op_types and "Mul" not in pruned.op_types and pruned.num_nodes < ref.num_nodes
    with pytest.raises(ValueError, match="unknown form"):
        GraphResolver(None, form="fast")


def test_form_in_manifest_model_row_and_measurement_config(tmp_path) -> None:
    from device_agent.models import discover_models
    from device_agent.protocol import MeasureConfig, MeasureResult
    from device_agent.runner import make_record

    space = NB201Space()
    archs = [space.from_index(3)]
    export_archs(space, archs, tmp_path)
    sha_ref = read_manifest(tmp_path)[0]["sha256"]
    assert read_manifest(tmp_path)[0]["form"] == "reference"
    (entry,) = export_archs(space, archs, tmp_path, form="pruned")  # another form: exported again
    assert entry["form"] == "pruned" and entry["sha256"] != sha_ref
    assert json.loads((tmp_path / "manifest.jsonl").read_text())["form"] == "pruned"
    (model,) = discover_models(tmp_path)
    assert model.form == "pruned" and model.record.graph_summary["form"] == "pruned"
    rec = make_record(model, MeasureResult.from_dict({"status": "ok", "samples_ms": [1.0, 1.1, 1.2], "number": 1}),
                      MeasureConfig(), device_id="dev")
    assert rec.config["form"] == "pruned"
    onnx.checker.check_model(onnx.load(tmp_path / entry["file"]), full_check=True)
