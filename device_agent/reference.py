"""The drift reference: a small fixed network that the interleaved protocol times in every round.

Every round of a batch visits the reference too, so a run stores, beside its models, how fast one
and the same network ran while the batch lasted. That makes drift visible (within a run: the
reference's first half against its second; between runs: one run's reference median against
another's) and lets rankings divide it out: each model row carries ``ref_ratio``, the median over
rounds of its visit time over the reference's visit time in the same round.

The file ``data/reference.onnx`` ships inside the package (35 KB; made once by
``data/make_reference.py``); it is stored as a model of space :data:`REFERENCE_SPACE` with arch
``device_agent/reference-v1``, so its rows are identifiable and are never taken for a candidate.
"""

from __future__ import annotations

from pathlib import Path

from latency_db.records import REFERENCE_SPACE, ModelRecord

from device_agent.models import ModelFile, sha256_file

#: Bump (with a new file) if the reference network ever changes: rows of two references never mix.
REFERENCE_VERSION = "v1"
REFERENCE_ARCH = f"device_agent/reference-{REFERENCE_VERSION}"
REFERENCE_KEY = f"reference-{REFERENCE_VERSION}"


def reference_path() -> Path:
    """The shipped reference model file."""
    return Path(__file__).resolve().parent / "data" / "reference.onnx"


def reference_model() -> ModelFile:
    """The reference as a :class:`~device_agent.models.ModelFile` (space ``reference``).

    Raises:
        FileNotFoundError: the package was installed without its data file.
    """
    path = reference_path()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the agent's reference model is missing; reinstall hwnas")
    record = ModelRecord(sha256_file(path), space=REFERENCE_SPACE, arch=REFERENCE_ARCH, key=REFERENCE_KEY,
                         input_shape=(1, 3, 32, 32), graph_summary={"role": "drift reference"})
    return ModelFile(path=path, key=REFERENCE_KEY, sha256=record.sha256 or "", record=record)


__all__ = ["REFERENCE_ARCH", "REFERENCE_KEY", "REFERENCE_SPACE", "REFERENCE_VERSION", "reference_model", "reference_path"]
