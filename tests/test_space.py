"""Search spaces: the conformance checks every space passes, plus space-specific facts."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from hwnas.space import MacroSpace, NB201Space, SearchSpace, TorchBuildable, get_space
from hwnas.space.nb201 import OPS

def joint_space() -> SearchSpace:
    from hwnas.codesign.joint_space import JointSpace

    return JointSpace(NB201Space())


SPACES = [NB201Space(), MacroSpace(), joint_space()]


@pytest.mark.parametrize("space", SPACES, ids=lambda s: s.name)
class TestSpaceConformance:
    """The contract of :class:`SearchSpace`, checked for every implementation."""

    def test_roundtrips(self, space: SearchSpace) -> None:
        rng = np.random.default_rng(0)
        for _ in range(200):
            arch = space.sample(rng)
            assert space.contains(arch)
            assert space.parse(arch.spec) == arch
            vec = space.encode(arch)
            assert vec.dtype == np.int64 and len(vec) == len(space.cardinalities)
            assert all(0 <= v < c for v, c in zip(vec, space.cardinalities))
            assert space.decode(vec) == arch

    def test_sampling_is_seeded_and_varied(self, space: SearchSpace) -> None:
        a = [space.sample(np.random.default_rng(7)) for _ in range(3)]
        assert a[0] == a[1] == a[2]
        rng = np.random.default_rng(1)
        assert len({space.sample(rng) for _ in range(50)}) > 40

    def test_mutate_changes_one_decision(self, space: SearchSpace) -> None:
        rng = np.random.default_rng(3)
        for _ in range(100):
            arch = space.sample(rng)
            child = space.mutate(arch, rng)
            assert child != arch and space.contains(child)

    def test_bad_strings_rejected(self, space: SearchSpace) -> None:
        for bad in ["", "garbage", "|foo~0|+|bar~0|baz~1|", "224|24:k9e9"]:
            assert not space.contains(bad)
            with pytest.raises(ValueError) as exc:
                space.parse(bad)
            assert "\n" not in str(exc.value)

    def test_decode_rejects_out_of_range(self, space: SearchSpace) -> None:
        vec = np.array(space.cardinalities)  # every entry one past its range
        with pytest.raises(ValueError, match="must be in"):
            space.decode(vec)
        with pytest.raises(ValueError, match="entries"):
            space.decode([0])

    def test_key_is_stable_and_file_safe(self, space: SearchSpace) -> None:
        arch = space.sample(np.random.default_rng(5))
        key = space.key(arch)
        assert key == space.key(space.parse(arch.spec)) and key.startswith(space.name)
        assert all(c.isalnum() or c in "-_" for c in key)

    def test_to_torch_runs(self, space: SearchSpace) -> None:
        if not isinstance(space, TorchBuildable):
            assert not hasattr(space, "to_torch")  # a space that is no network does not pretend to be one
            return
        arch = space.sample(np.random.default_rng(2))
        net = space.to_torch(arch, num_classes=7).eval()
        with torch.no_grad():
            out = net(torch.zeros(space.input_shape(arch)))
        assert out.shape == (1, 7)


def test_get_space() -> None:
    assert get_space("nb201").name == "nb201"
    with pytest.raises(ValueError, match="unknown space"):
        get_space("nasnet")


def test_nb201_index_matches_nas_bench_201(nb201_accuracy_csv) -> None:
    space = NB201Space()
    with open(nb201_accuracy_csv) as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == space.size == 15625
    for row in rows:
        arch = space.parse(row["arch_str"])
        assert arch.spec == row["arch_str"]
        assert space.index(arch) == int(row["arch_idx"])
    assert [a.spec for a in space.enumerate()] == [r["arch_str"] for r in rows]


def test_nb201_encoding_follows_edges() -> None:
    space = NB201Space()
    arch = space.decode([0, 1, 2, 3, 4, 0])
    assert arch.spec == "|none~0|+|skip_connect~0|nor_conv_1x1~1|+|nor_conv_3x3~0|avg_pool_3x3~1|none~2|"
    assert len(OPS) ** 6 == space.size
    with pytest.raises(ValueError, match="index"):
        space.from_index(15625)


def test_nb201_network_shape_and_params() -> None:
    space = NB201Space()
    all_conv3 = space.decode([3] * 6)
    none = space.decode([0] * 6)
    big = space.to_torch(all_conv3)
    small = space.to_torch(none)
    n_big = sum(p.numel() for p in big.parameters())
    n_small = sum(p.numel() for p in small.parameters())
    # NAS-Bench-201 reports 1.53 M parameters (incl. BN) for the all-3x3 cell and 0.07 M for all-none
    assert 1.4e6 < n_big < 1.6e6
    assert 0.05e6 < n_small < 0.1e6
    with torch.no_grad():
        out = small.eval()(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)


def test_macro_space_size_and_rules() -> None:
    space = MacroSpace()
    assert space.size > 10**20
    with pytest.raises(ValueError, match="first layer"):
        space.parse("224|24:skip|32:k3e1|64:k3e1|96:k3e1|160:k3e1|320:k3e1")
    with pytest.raises(ValueError, match="width"):
        space.parse("224|25:k3e1|32:k3e1|64:k3e1|96:k3e1|160:k3e1|320:k3e1")
    arch = space.parse("160|24:k3e6-skip-k5e3|32:k7e1|64:k3e1|96:k3e1|160:k3e1|320:k3e1")
    assert space.input_shape(arch) == (1, 3, 160, 160)
    # depth and skip both change the network
    shallow = space.parse("160|24:k3e6|32:k7e1|64:k3e1|96:k3e1|160:k3e1|320:k3e1")
    n = lambda a: sum(p.numel() for p in space.to_torch(a).parameters())  # noqa: E731
    assert n(shallow) < n(arch)
