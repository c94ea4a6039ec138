"""Golden compute cycles from SCALE-Sim itself (no SCALE-Sim needed at test time).

Source: ``bench/scalesim_compare.py`` (default layer subset), SCALE-Sim 3.0.0 from PyPI
(``pip install scalesim "numpy<2"``, numpy 1.26.4), run 2026-11-28; SRAMs 64 MB each, interface
bandwidth CALC, so every layer reported 0 stall cycles. Each value is COMPUTE_REPORT's
``Total Cycles - Stall Cycles`` (here equal to ``Total Cycles``).
"""

import pytest

from hw_space.systolic import compute_cycles
from hw_space.workload import mobilenet, resnet18

# (network, layer, dataflow, rows, cols, SCALE-Sim Total Cycles - Stall Cycles)
GOLDEN = (
    ("resnet18", "Conv3_1a", "ws", 16, 16, 239039),
    ("resnet18", "Conv3_s", "ws", 16, 16, 28383),
    ("resnet18", "Conv4_s", "ws", 16, 16, 34687),
    ("resnet18", "Conv5_s", "ws", 16, 16, 56319),
    ("resnet18", "FC", "ws", 16, 16, 94751),
    ("resnet18", "Conv3_1a", "ws", 32, 32, 63215),
    ("resnet18", "Conv3_s", "ws", 32, 32, 7479),
    ("resnet18", "Conv4_s", "ws", 32, 32, 10207),
    ("resnet18", "Conv5_s", "ws", 32, 32, 20223),
    ("resnet18", "FC", "ws", 32, 32, 48639),
    ("resnet18", "Conv3_1a", "ws", 32, 16, 124127),
    ("resnet18", "Conv3_s", "ws", 32, 16, 14703),
    ("resnet18", "Conv4_s", "ws", 32, 16, 19391),
    ("resnet18", "Conv5_s", "ws", 32, 16, 36351),
    ("resnet18", "FC", "ws", 32, 16, 79631),
    ("resnet18", "Conv3_1a", "os", 16, 16, 237551),
    ("resnet18", "Conv3_s", "os", 16, 16, 39855),
    ("resnet18", "Conv4_s", "os", 16, 16, 37919),
    ("resnet18", "Conv5_s", "os", 16, 16, 36607),
    ("resnet18", "FC", "os", 16, 16, 34145),
    ("resnet18", "Conv3_1a", "os", 32, 32, 63799),
    ("resnet18", "Conv3_s", "os", 32, 32, 13607),
    ("resnet18", "Conv4_s", "os", 32, 32, 12159),
    ("resnet18", "Conv5_s", "os", 32, 32, 10175),
    ("resnet18", "FC", "os", 32, 32, 18367),
    ("resnet18", "Conv3_1a", "os", 32, 16, 124399),
    ("resnet18", "Conv3_s", "os", 32, 16, 23759),
    ("resnet18", "Conv4_s", "os", 32, 16, 22271),
    ("resnet18", "Conv5_s", "os", 32, 16, 19327),
    ("resnet18", "FC", "os", 32, 16, 35153),
    ("resnet18", "Conv3_1a", "is", 16, 16, 306935),
    ("resnet18", "Conv3_s", "is", 16, 16, 36887),
    ("resnet18", "Conv4_s", "is", 16, 16, 36239),
    ("resnet18", "Conv5_s", "is", 16, 16, 35711),
    ("resnet18", "FC", "is", 16, 16, 33471),
    ("resnet18", "Conv3_1a", "is", 32, 32, 99899),
    ("resnet18", "Conv3_s", "is", 32, 32, 11987),
    ("resnet18", "Conv4_s", "is", 32, 32, 11199),
    ("resnet18", "Conv5_s", "is", 32, 32, 9695),
    ("resnet18", "FC", "is", 32, 32, 17503),
    ("resnet18", "Conv3_1a", "is", 32, 16, 181691),
    ("resnet18", "Conv3_s", "is", 32, 16, 21835),
    ("resnet18", "Conv4_s", "is", 32, 16, 20039),
    ("resnet18", "Conv5_s", "is", 32, 16, 18879),
    ("resnet18", "FC", "is", 32, 16, 17247),
    ("mobilenet", "Conv1", "ws", 16, 16, 50359),
    ("mobilenet", "Conv5", "ws", 16, 16, 101823),
    ("mobilenet", "Conv12", "ws", 16, 16, 34847),
    ("mobilenet", "Conv13", "ws", 16, 16, 123903),
    ("mobilenet", "Conv24", "ws", 16, 16, 27359),
    ("mobilenet", "Conv26", "ws", 16, 16, 31679),
    ("mobilenet", "Conv1", "ws", 32, 32, 12637),
    ("mobilenet", "Conv5", "ws", 32, 32, 25839),
    ("mobilenet", "Conv12", "ws", 32, 32, 20879),
    ("mobilenet", "Conv13", "ws", 32, 32, 37119),
    ("mobilenet", "Conv24", "ws", 32, 32, 20591),
    ("mobilenet", "Conv26", "ws", 32, 32, 29663),
    ("mobilenet", "Conv1", "ws", 32, 16, 25243),
    ("mobilenet", "Conv5", "ws", 32, 16, 51423),
    ("mobilenet", "Conv12", "ws", 32, 16, 19727),
    ("mobilenet", "Conv13", "ws", 32, 16, 70143),
    ("mobilenet", "Conv24", "ws", 32, 16, 18287),
    ("mobilenet", "Conv26", "ws", 32, 16, 25055),
    ("mobilenet", "Conv1", "os", 16, 16, 89375),
    ("mobilenet", "Conv5", "os", 16, 16, 147391),
    ("mobilenet", "Conv12", "os", 16, 16, 30341),
    ("mobilenet", "Conv13", "os", 16, 16, 118975),
    ("mobilenet", "Conv24", "os", 16, 16, 18551),
    ("mobilenet", "Conv26", "os", 16, 16, 9245),
    ("mobilenet", "Conv1", "os", 32, 32, 34887),
    ("mobilenet", "Conv5", "os", 32, 32, 49391),
    ("mobilenet", "Conv12", "os", 32, 32, 16561),
    ("mobilenet", "Conv13", "os", 32, 32, 35615),
    ("mobilenet", "Conv24", "os", 32, 32, 9339),
    ("mobilenet", "Conv26", "os", 32, 32, 9277),
    ("mobilenet", "Conv1", "os", 32, 16, 57231),
    ("mobilenet", "Conv5", "os", 32, 16, 86239),
    ("mobilenet", "Conv12", "os", 32, 16, 16449),
    ("mobilenet", "Conv13", "os", 32, 16, 67647),
    ("mobilenet", "Conv24", "os", 32, 16, 9307),
    ("mobilenet", "Conv26", "os", 32, 16, 9261),
    ("mobilenet", "Conv1", "is", 16, 16, 122303),
    ("mobilenet", "Conv5", "is", 16, 16, 136415),
    ("mobilenet", "Conv12", "is", 16, 16, 87983),
    ("mobilenet", "Conv13", "is", 16, 16, 116063),
    ("mobilenet", "Conv24", "is", 16, 16, 54143),
    ("mobilenet", "Conv26", "is", 16, 16, 27071),
    ("mobilenet", "Conv1", "is", 32, 32, 49391),
    ("mobilenet", "Conv5", "is", 32, 32, 43511),
    ("mobilenet", "Conv12", "is", 32, 32, 47879),
    ("mobilenet", "Conv13", "is", 32, 32, 33935),
    ("mobilenet", "Conv24", "is", 32, 32, 27359),
    ("mobilenet", "Conv26", "is", 32, 32, 27359),
    ("mobilenet", "Conv1", "is", 32, 16, 86239),
    ("mobilenet", "Conv5", "is", 32, 16, 80751),
    ("mobilenet", "Conv12", "is", 32, 16, 73943),
    ("mobilenet", "Conv13", "is", 32, 16, 61359),
    ("mobilenet", "Conv24", "is", 32, 16, 45503),
    ("mobilenet", "Conv26", "is", 32, 16, 22751),
)

_NETS = {"resnet18": {lay.name: lay for lay in resnet18()},
         "mobilenet": {lay.name: lay for lay in mobilenet()}}


@pytest.mark.parametrize("dataflow", ["ws", "os", "is"])
def test_compute_cycles_equal_scalesim(dataflow):
    rows = [g for g in GOLDEN if g[2] == dataflow]
    assert rows
    layers = [_NETS[net][name] for net, name, *_ in rows]
    r = [g[3] for g in rows]
    c = [g[4] for g in rows]
    got = compute_cycles(layers, r, c, dataflow)
    want = [g[5] for g in rows]
    bad = [(g[:5], int(x), y) for g, x, y in zip(rows, got, want) if int(x) != y]
    assert not bad, bad
