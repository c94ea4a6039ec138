"""Model files to measure: discovery, content hashes, manifest metadata and graph summaries.

``hwnas export`` writes ``DIR/<key>.onnx`` plus ``DIR/manifest.jsonl`` (one JSON object per line:
``file`` or ``key``, ``arch``, ``space``, ``form``, ``flops``, ``params``, ``input_shape``,
``sha256``). The manifest is optional: any folder of ``.onnx`` files can be measured.

A manifest's ``form`` (``reference`` or ``pruned``: how an NB201 cell was implemented, see
``hwnas.export``) is kept in the model's ``graph_summary["form"]`` and, by the runner, in each
measurement's ``config["form"]``: two forms of one architecture are two models, and their rows say so.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from latency_db.records import ModelRecord

MANIFEST_NAME = "manifest.jsonl"

_CHUNK = 1 << 20


@dataclass(frozen=True)
class ModelFile:
    """One ONNX file to measure and the database record that describes it.

    Attributes:
        path: the file.
        key: short stable key (manifest ``key`` when trusted, else the file stem).
        sha256: hex sha256 of the file's bytes (content address in the database).
        record: the :class:`latency_db.records.ModelRecord` to store.
        warnings: problems found while reading its metadata (e.g. a stale manifest hash).
    """

    path: Path
    key: str
    sha256: str
    record: ModelRecord
    warnings: tuple[str, ...] = ()

    @property
    def arch(self) -> str | None:
        """The architecture string from the manifest, if any."""
        return self.record.arch

    @property
    def form(self) -> str | None:
        """The implementation form from the manifest (``reference``, ``pruned``), if any."""
        summary = self.record.graph_summary or {}
        form = summary.get("form")
        return str(form) if form else None


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def graph_summary(path: str | Path) -> dict[str, Any] | None:
    """Op-type counts, node count, opset and inputs of an ONNX file.

    ``onnx`` is not an agent dependency: it is imported lazily and the summary is None when it is
    not installed or the file does not parse.
    """
    try:
        import onnx  # optional
    except ImportError:
        return None
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - a corrupt file is reported by the measurement
        return None
    graph = model.graph
    ops = Counter(node.op_type for node in graph.node)
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    initializers = {init.name for init in graph.initializer}
    inputs = []
    for value in graph.input:
        if value.name in initializers:
            continue
        tensor = value.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in tensor.shape.dim]
        inputs.append({
            "name": value.name,
            "shape": dims,
            "dtype": onnx.TensorProto.DataType.Name(tensor.elem_type) if tensor.elem_type else None,
        })
    return {
        "node_count": len(graph.node),
        "op_counts": dict(sorted(ops.items())),
        "opset": opset,
        "ir_version": int(model.ir_version),
        "inputs": inputs,
    }


def read_manifest_entries(folder: str | Path) -> list[dict[str, Any]]:
    """Entries of ``folder/manifest.jsonl`` in file order (``[]`` when there is none): the one
    manifest reader of hwnas, host and device side alike.

    Raises:
        ValueError: a line is not a JSON object; the message names the file and line, so the
            user can fix it (a malformed manifest is an error, never silently skipped: its
            models would be stored without their architecture).
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        return []
    entries = []
    with open(path, encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{path}:{lineno}: not valid JSON ({exc.msg}); fix or delete the line") from None
            if not isinstance(entry, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object; fix or delete the line")
            entries.append(entry)
    return entries


def read_manifest(folder: Path) -> dict[str, dict[str, Any]]:
    """:func:`read_manifest_entries` keyed by file name (``file``, or ``key`` + ``.onnx``).

    Raises:
        ValueError: as :func:`read_manifest_entries`, or an entry with neither ``file`` nor ``key``.
    """
    entries: dict[str, dict[str, Any]] = {}
    for n, entry in enumerate(read_manifest_entries(folder), 1):
        if entry.get("file"):
            entries[Path(str(entry["file"])).name] = entry
        elif entry.get("key"):
            entries[f"{entry['key']}.onnx"] = entry
        else:
            raise ValueError(f"{Path(folder) / MANIFEST_NAME}: entry {n} has neither 'file' nor 'key'")
    return entries


def _int_or_none(value: Any) -> int | None:
    try:
        return None if value is None else int(value)
    except (TypeError, ValueError):
        return None


def _static_shape(summary: dict[str, Any] | None) -> tuple[int, ...] | None:
    if not summary or not summary.get("inputs"):
        return None
    dims = summary["inputs"][0]["shape"]
    if dims and all(isinstance(d, int) and d > 0 for d in dims):
        return tuple(dims)
    return None


def load_model_file(
    path: Path, entry: dict[str, Any] | None, *, with_graph_summary: bool = True
) -> ModelFile:
    """Hashes one file and builds its :class:`ModelFile`, trusting the file over the manifest.

    When the manifest ``entry`` carries a ``sha256`` that differs from the file's, the entry's
    metadata is ignored and a warning is attached.
    """
    sha = sha256_file(path)
    notes: list[str] = []
    if entry is not None and entry.get("sha256") and str(entry["sha256"]).lower() != sha:
        notes.append(
            f"{path.name}: manifest sha256 {str(entry['sha256'])[:12]}... does not match the file "
            f"({sha[:12]}...); ignoring its manifest metadata"
        )
        entry = None
    entry = entry or {}
    summary = graph_summary(path) if with_graph_summary else None
    shape = entry.get("input_shape")
    try:
        input_shape = tuple(int(d) for d in shape) if shape else _static_shape(summary)
    except (TypeError, ValueError):
        input_shape = _static_shape(summary)
    key = str(entry.get("key") or path.stem)
    if entry.get("form"):
        summary = {**(summary or {}), "form": str(entry["form"])}
    record = ModelRecord(
        sha256=sha,
        space=entry.get("space"),
        arch=entry.get("arch"),
        key=key,
        flops=_int_or_none(entry.get("flops")),
        params=_int_or_none(entry.get("params")),
        input_shape=input_shape,
        graph_summary=summary,
    )
    return ModelFile(path=path, key=key, sha256=sha, record=record, warnings=tuple(notes))


def discover_models(
    path: str | Path,
    *,
    warn: Callable[[str], None] | None = None,
    with_graph_summary: bool = True,
) -> list[ModelFile]:
    """The ``*.onnx`` files of a folder (sorted by name), or a single ``.onnx`` file.

    Args:
        path: a folder (its ``manifest.jsonl`` is read when present) or one ``.onnx`` file.
        warn: receives one-line warnings (a stale manifest hash); defaults to
            :func:`warnings.warn`.
        with_graph_summary: compute graph summaries (needs ``onnx``; skipped when absent).

    Returns:
        One :class:`ModelFile` per file.

    Raises:
        ValueError: one line starting with ``--models`` when the path is missing, is neither a
            folder nor an ``.onnx`` file, or the folder holds no ``.onnx`` files; or a malformed
            manifest line (named by :func:`read_manifest_entries`).

    Example:
        >>> models = discover_models("candidates/")  # doctest: +SKIP
        >>> [m.key for m in models]  # doctest: +SKIP
        ['a1b2c3', 'd4e5f6']
    """
    report = warn or (lambda message: warnings.warn(message, stacklevel=3))
    root = Path(path)
    if not root.exists():
        raise ValueError(f"--models {path}: no such file or folder")
    if root.is_file():
        if root.suffix.lower() != ".onnx":
            raise ValueError(f"--models {path}: not a folder or an .onnx file")
        files, folder = [root], root.parent
    elif root.is_dir():
        files = sorted(p for p in root.iterdir() if p.suffix.lower() == ".onnx" and p.is_file())
        folder = root
        if not files:
            raise ValueError(f"--models {path}: no .onnx files in this folder")
    else:
        raise ValueError(f"--models {path}: not a folder or an .onnx file")
    manifest = read_manifest(folder)
    out = []
    for file in files:
        model = load_model_file(
            file, manifest.get(file.name), with_graph_summary=with_graph_summary
        )
        for note in model.warnings:
            report(note)
        out.append(model)
    return out
