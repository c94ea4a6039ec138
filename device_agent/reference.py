"""The drift references: fixed networks that the interleaved protocol times in every round.

Every round of a batch visits the references too, so a run stores, beside its models, how fast the
same networks ran while the batch lasted. That makes drift visible (within a run: a reference's
first half against its second; between runs: one run's reference level against another's) and
lets rankings divide it out: each model row carries ``ref_ratio``, its drift-corrected median over
the **panel level** of its batch (the geometric mean of the references' drift-corrected medians).

Why a panel and not one reference: the candidates of a search take 0.7-9 ms here and a machine's
slowdown depends on a network's size (a small one lives in the caches another tenant thrashes; a
large one streams its weights either way). One small reference (v1, 0.4-0.6 ms) followed the
candidates' shift between runs only in part; three references spanning their sizes follow it
closer, and their geometric mean is less noisy than any one of them.

The files ship inside the package (``data/reference.onnx``, ``data/reference-mid.onnx``,
``data/reference-large.onnx``; made once by ``data/make_reference.py``). They are stored as models
of space :data:`REFERENCE_SPACE` with archs ``device_agent/reference-v1``,
``device_agent/reference-mid-v1`` and ``device_agent/reference-large-v1``, so their rows are
identifiable and are never taken for a candidate. Runs before the panel (protocol configs hashed
without :data:`REFERENCE_PANEL`) timed only the first.
"""

from __future__ import annotations

from pathlib import Path

from latency_db.records import REFERENCE_SPACE, ModelRecord

from device_agent.models import ModelFile, sha256_file
from device_agent.protocol import REFERENCE_PANEL

#: Bump (with a new file) if the reference network ever changes: rows of two references never mix.
REFERENCE_VERSION = "v1"
REFERENCE_ARCH = f"device_agent/reference-{REFERENCE_VERSION}"
REFERENCE_KEY = f"reference-{REFERENCE_VERSION}"
#: The panel, smallest first: (key, file name). Changing it means a new :data:`REFERENCE_PANEL`.
PANEL_FILES: tuple[tuple[str, str], ...] = (
    (REFERENCE_KEY, "reference.onnx"),
    (f"reference-mid-{REFERENCE_VERSION}", "reference-mid.onnx"),
    (f"reference-large-{REFERENCE_VERSION}", "reference-large.onnx"),
)
REFERENCE_ARCHS = frozenset(f"device_agent/{key}" for key, _ in PANEL_FILES)


def reference_path(name: str = "reference.onnx") -> Path:
    """A shipped reference model file (the small one by default)."""
    return Path(__file__).resolve().parent / "data" / name


def _model(key: str, name: str) -> ModelFile:
    path = reference_path(name)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: the agent's reference model is missing; reinstall hwnas")
    record = ModelRecord(sha256_file(path), space=REFERENCE_SPACE, arch=f"device_agent/{key}", key=key,
                         input_shape=(1, 3, 32, 32), graph_summary={"role": "drift reference"})
    return ModelFile(path=path, key=key, sha256=record.sha256 or "", record=record)


def reference_model() -> ModelFile:
    """The small reference (v1) as a :class:`~device_agent.models.ModelFile` (space ``reference``).

    Raises:
        FileNotFoundError: the package was installed without its data file.
    """
    return _model(*PANEL_FILES[0])


def reference_panel() -> list[ModelFile]:
    """The references that the interleaved protocol times in every round, smallest first.

    Raises:
        FileNotFoundError: the package was installed without one of their files.
    """
    return [_model(key, name) for key, name in PANEL_FILES]


__all__ = ["PANEL_FILES", "REFERENCE_ARCH", "REFERENCE_ARCHS", "REFERENCE_KEY", "REFERENCE_PANEL", "REFERENCE_SPACE",
           "REFERENCE_VERSION", "reference_model", "reference_panel", "reference_path"]
