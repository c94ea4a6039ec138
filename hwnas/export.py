"""Architecture -> PyTorch -> ONNX, and the candidate folders the device agent measures.

A candidate folder holds ``<key>.onnx`` files and ``manifest.jsonl`` (one JSON object per model:
``arch, key, space, form, file, flops, macs, params, input_shape, sha256, opset``), which is what
``device_agent run --models DIR`` reads.

**Forms.** ``reference`` (the default) computes every edge of an NB201 cell, as NAS-Bench-201's
implementation and the published latency tables do. ``pruned`` is the deployable form
(:meth:`hwnas.nets.nb201_net.NB201Network.pruned`): no ``none`` edges, no operations without a path
from the cell's input or to its output, with the same weights and the same outputs. Spaces without
dead work (macro) export the same network in both forms. The form is written to the manifest, and
the device agent stores it with the model (``graph_summary["form"]``) and with each measurement
(``config["form"]``), so rows of the two forms are told apart.

Export is deterministic: weights are initialised from a seed derived from the architecture, and
the TorchScript-based exporter (``dynamo=False``, about 0.1 s a model here, against 1-4 s for the
``torch.export`` one) writes the same bytes for the same architecture, so the model's sha256 is a
stable identity. Weights are embedded (no ``.onnx.data`` side files) and every file passes
``onnx.checker`` before it is written. Files are written atomically: a crash never leaves a
half-written model or manifest.

Example:
    >>> from hwnas.space import NB201Space
    >>> from hwnas.export import arch_to_onnx
    >>> space = NB201Space()
    >>> data = arch_to_onnx(space, space.from_index(0))
    >>> data == arch_to_onnx(space, space.from_index(0))
    True
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import onnx

from device_agent.models import sha256_file
from hwnas.fileio import atomic_write_bytes
from hwnas.onnx_graph import graph_stats
from hwnas.space.base import Arch, SearchSpace

MANIFEST = "manifest.jsonl"
DEFAULT_OPSET = 17
#: Implementation forms of an architecture's network (see the module docstring).
FORMS = ("reference", "pruned")


def check_form(form: str) -> str:
    """``form`` if it is one of :data:`FORMS`; ``ValueError`` naming them otherwise."""
    if form not in FORMS:
        raise ValueError(f"unknown form {form!r}; choose one of: {', '.join(FORMS)}")
    return form


@dataclass(frozen=True)
class ExportedModel:
    """One exported candidate: where it is and what it is."""

    arch: Arch
    key: str
    path: Path
    sha256: str
    flops: int
    macs: int
    params: int
    input_shape: tuple[int, ...]
    opset: int
    graph_summary: dict[str, Any]
    form: str = "reference"

    def manifest_entry(self) -> dict[str, Any]:
        """The JSON object written to ``manifest.jsonl`` for this model."""
        return {
            "arch": self.arch.spec,
            "key": self.key,
            "space": self.arch.space,
            "form": self.form,
            "file": self.path.name,
            "flops": self.flops,
            "macs": self.macs,
            "params": self.params,
            "input_shape": list(self.input_shape),
            "sha256": self.sha256,
            "opset": self.opset,
            "graph_summary": self.graph_summary,
        }


def arch_to_onnx(space: SearchSpace, arch: Arch, *, opset: int = DEFAULT_OPSET, form: str = "reference") -> bytes:
    """Serialised ONNX model (eval mode, batch 1, BatchNorm folded) of ``arch``; deterministic.

    Both forms carry the same weights (drawn from the same seed), so their outputs are equal.
    """
    import torch

    check_form(form)
    seed = int(arch.digest(8), 16)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = space.to_torch(arch).eval()
        _randomize_batchnorm(net)
    if form == "pruned" and hasattr(net, "pruned"):
        net = net.pruned(space.input_shape(arch))
    dummy = torch.zeros(space.input_shape(arch))
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notice
        torch.onnx.export(
            net,
            (dummy,),
            buf,
            dynamo=False,
            opset_version=opset,
            input_names=["input"],
            output_names=["logits"],
            do_constant_folding=True,
        )
    return buf.getvalue()


def _randomize_batchnorm(net: Any) -> None:
    """Give BatchNorm layers non-trivial statistics (drawn from the seeded generator), as a trained
    network has: with the defaults every folded bias is zero and the exporter merges the identical
    initializers, which no trained model would show."""
    import torch

    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0.0, 0.1)
                m.running_mean.normal_(0.0, 0.1)
                m.running_var.uniform_(0.5, 1.5)


def read_manifest(folder: str | os.PathLike) -> list[dict[str, Any]]:
    """Entries of ``folder/manifest.jsonl`` (empty list if there is none); the agent's reader
    (:func:`device_agent.models.read_manifest_entries`), so host and device read it alike.

    Raises:
        ValueError: a line is not a JSON object (the message names the line).
    """
    from device_agent.models import read_manifest_entries

    return read_manifest_entries(folder)


def write_manifest(folder: str | os.PathLike, entries: Iterable[dict[str, Any]]) -> Path:
    """Atomically write ``folder/manifest.jsonl``, one entry per key (the last one wins), sorted by key."""
    by_key = {e["key"]: e for e in entries}
    text = "".join(json.dumps(by_key[k], sort_keys=True) + "\n" for k in sorted(by_key))
    path = Path(folder) / MANIFEST
    atomic_write_bytes(path, text.encode())
    return path


def export_arch(
    space: SearchSpace, arch: Arch, out_dir: Path, *, opset: int = DEFAULT_OPSET, form: str = "reference"
) -> ExportedModel:
    """Export one architecture to ``out_dir/<key>.onnx`` (checked with ``onnx.checker``)."""
    data = arch_to_onnx(space, arch, opset=opset, form=form)
    model = onnx.load_from_string(data)
    onnx.checker.check_model(model, full_check=True)
    stats = graph_stats(model)
    key = space.key(arch)
    path = Path(out_dir) / f"{key}.onnx"
    atomic_write_bytes(path, data)
    return ExportedModel(
        arch=arch,
        key=key,
        path=path,
        sha256=hashlib.sha256(data).hexdigest(),
        flops=stats.flops,
        macs=stats.macs,
        params=stats.params,
        input_shape=stats.input_shape,
        opset=stats.opset,
        graph_summary=stats.summary(),
        form=form,
    )


def export_archs(
    space: SearchSpace,
    archs: Iterable[Arch],
    out_dir: str | os.PathLike,
    *,
    opset: int = DEFAULT_OPSET,
    form: str = "reference",
    on_progress: Callable[[int, str, bool], None] | None = None,
    flush_every: int = 100,
) -> list[dict[str, Any]]:
    """Export ``archs`` into ``out_dir`` and update its manifest; returns their manifest entries.

    A folder holds one form of each architecture: exporting another form replaces the file and
    its manifest entry (entries without ``form`` are ``reference``, as exported before forms
    existed). A model whose file already exists, in the same form, with the sha256 that the
    manifest records is not exported again, so an interrupted export of many models resumes. The manifest is rewritten atomically
    every ``flush_every`` models and at the end (also when interrupted), so it never describes a
    file that is not there; a file written after the last flush is simply exported again.

    Args:
        on_progress: called as ``on_progress(i, key, skipped)`` after each model (``i`` from 1).
    """
    check_form(form)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    entries = {e.get("key"): e for e in read_manifest(out) if e.get("key")}
    result = []
    dirty = 0
    try:
        for i, arch in enumerate(archs, start=1):
            key = space.key(arch)
            old = entries.get(key)
            path = out / f"{key}.onnx"
            skipped = bool(
                old
                and old.get("arch") == arch.spec
                and old.get("form", "reference") == form
                and path.exists()
                and sha256_file(path) == old.get("sha256")
            )
            if not skipped:
                entries[key] = export_arch(space, arch, out, opset=opset, form=form).manifest_entry()
                dirty += 1
                if dirty >= flush_every:
                    write_manifest(out, entries.values())
                    dirty = 0
            result.append(entries[key])
            if on_progress:
                on_progress(i, key, skipped)
    finally:
        if dirty:
            write_manifest(out, entries.values())
    return result
