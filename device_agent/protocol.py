"""The measurement protocol as a typed value, and the result of measuring one model.

The protocol (:class:`MeasureConfig`) is what makes two latency numbers comparable: two
measurements with the same :meth:`MeasureConfig.config_hash` on the same device were taken the same
way. The database uses the hash for resume (a model already measured OK under the same hash on the
same device is skipped).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from latency_db.records import Status

from device_agent.stats import Stats, summarize

#: Fields of :class:`MeasureConfig` that change the numbers, hence enter :meth:`config_hash`.
HASHED_FIELDS = ("runtime", "provider", "threads", "warmup", "repeats", "min_repeat_ms")

#: Extra hashed fields of the ``interleaved`` protocol (which has no use for ``repeats``).
INTERLEAVED_HASHED_FIELDS = ("protocol", "min_rounds", "max_rounds", "target_rel_ci")

#: The drift references an interleaved run times (:mod:`device_agent.reference`); hashed, so runs
#: with one reference and runs with the panel never share a level (their ``ref_ratio`` units differ).
REFERENCE_PANEL = "panel-v1"

#: Names accepted by ``--protocol``.
PROTOCOLS = ("interleaved", "sequential")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return (_is_int(value) or isinstance(value, float)) and math.isfinite(value)


@dataclass(frozen=True)
class MeasureConfig:
    """How the models of one run are measured. Immutable; one value per ``device_agent run``.

    Two protocols. Both load each model the same way and time it in *visits*:

    1. **1 load**: the runtime builds a session from the file (``threads`` intra-op threads,
       1 inter-op thread, sequential execution, all graph optimisations) and deterministic
       random inputs (numpy seed 0; symbolic dimensions set to 1).
    2. **warmup calls discarded**: ``warmup`` inference calls, not timed.
    3. **calibration, discarded**: ``number`` (the back-to-back calls per visit) is chosen once,
       by doubling/extrapolating from 1 until ``number`` calls last at least
       1.2 x ``min_repeat_ms`` (the margin keeps later visits above the minimum despite jitter);
       ``number`` is 1 when one call already lasts that long.
    4. **a visit**: the wall time (``time.perf_counter_ns``) of ``number`` back-to-back calls with
       nothing else in the timed region; **sample = visit time / number**, in milliseconds.

    ``interleaved`` (the default): the run's models are taken in batches of ``batch_size``, kept
    loaded in one guarded worker together with the agent's fixed drift reference
    (:mod:`device_agent.reference`), and timed in **rounds**: each round visits every model and
    the reference once, in a fresh shuffled order, each visit preceded by one untimed call (the
    model's caches are cold after the others ran). A model's samples are its per-round visits;
    its interval is :func:`device_agent.stats.repeat_interval` (``repeat-pi95``). A model stops
    after ``min_rounds`` rounds once its relative interval half-width is at most
    ``target_rel_ci``, or once the batch has run ``time_cap_s`` x (models in the batch) seconds,
    and always at ``max_rounds``; how it stopped is recorded. Batches are stored whole.

    ``sequential`` (hwnas before 0.2, kept for comparison): one model after another, ``repeats``
    back-to-back visits each; the interval is the median's 95% CI over them (``median-ci95``).

    Load + warm-up + calibration, and each visit, must finish within ``timeout_s`` or the worker
    is killed and the model is recorded with status ``timeout`` (the batch's other models are
    loaded again in a new worker and go on).

    Attributes:
        runtime: inference runtime: ``onnxruntime`` or ``tvm``.
        provider: execution provider: ``cpu``, ``cuda``, ``tensorrt`` (aliases) or a full
            onnxruntime provider name such as ``CUDAExecutionProvider``.
        threads: intra-op threads; 0 lets the runtime choose (onnxruntime: one per physical core).
        warmup: calls discarded before calibration and timing (>= 0).
        repeats: ``sequential`` only: timed samples (>= 1).
        min_repeat_ms: minimum duration of one visit, in milliseconds (> 0).
        timeout_s: per-model budget for load + warm-up + calibration, and for each visit, in
            seconds (> 0). Not part of :meth:`config_hash`: it does not change the numbers.
        protocol: ``interleaved`` or ``sequential``.
        min_rounds, max_rounds: ``interleaved``: rounds every model gets at least / at most.
        target_rel_ci: ``interleaved``: stop a model once its interval's half-width is at most
            this fraction of its median (0.01 = +-1%).
        time_cap_s: ``interleaved``: seconds per model a batch may run its rounds (the cap never
            cuts a model below ``min_rounds``). Not hashed.
        batch_size: ``interleaved``: models loaded and interleaved at once. Not hashed.
        tvm_target: ``tvm`` only: the TVM target as canonical JSON (see
            :mod:`device_agent.runtimes.tvm_rt`); hashed for ``tvm`` only.
        tvm_tune_trials: ``tvm`` only: MetaSchedule trials (0: untuned); hashed for ``tvm`` only.
        tvm_rpc: ``tvm`` only: an RPC server ``HOST:PORT`` or ``tracker:HOST:PORT:KEY`` to time on
            (the route, not the protocol: not hashed; the device is told apart by its name).
        tvm_db: ``tvm`` only: content hash (64 hex digits) of the shared MetaSchedule database the
            models are compiled against (``device_agent run --tvm-db``; see
            :mod:`device_agent.tvm_tune`), ``""`` for none; hashed for ``tvm`` only and only when set,
            so configs without a database hash as before.

    Example:
        >>> cfg = MeasureConfig(repeats=5, min_repeat_ms=1.0)
        >>> cfg.validate()
        >>> len(cfg.config_hash())
        64
    """

    runtime: str = "onnxruntime"
    provider: str = "cpu"
    threads: int = 0
    warmup: int = 10
    repeats: int = 20
    min_repeat_ms: float = 20.0
    timeout_s: float = 120.0
    profile_nodes: int = 0
    protocol: str = "interleaved"
    min_rounds: int = 20
    max_rounds: int = 100
    target_rel_ci: float = 0.01
    time_cap_s: float = 1.0
    batch_size: int = 16
    tvm_target: str = ""
    tvm_tune_trials: int = 0
    tvm_rpc: str = ""
    tvm_db: str = ""

    @property
    def interleaved(self) -> bool:
        """True for the ``interleaved`` protocol."""
        return self.protocol == "interleaved"

    def validate(self) -> None:
        """Checks every field's range.

        Raises:
            ValueError: one line naming the command-line flag to fix, e.g.
                ``--repeats must be a positive integer, got 0``.
        """
        if not isinstance(self.runtime, str) or not self.runtime.strip():
            raise ValueError(f"--runtime must be a runtime name, got {self.runtime!r}")
        if not isinstance(self.provider, str) or not self.provider.strip():
            raise ValueError(f"--provider must be a provider name, got {self.provider!r}")
        if not _is_int(self.threads) or self.threads < 0:
            raise ValueError(
                "--threads must be a non-negative integer (0 = runtime default), "
                f"got {self.threads!r}"
            )
        if not _is_int(self.warmup) or self.warmup < 0:
            raise ValueError(f"--warmup must be a non-negative integer, got {self.warmup!r}")
        if not _is_int(self.repeats) or self.repeats < 1:
            raise ValueError(f"--repeats must be a positive integer, got {self.repeats!r}")
        if not _is_number(self.min_repeat_ms) or self.min_repeat_ms <= 0:
            raise ValueError(
                "--min-repeat-ms must be a positive number of milliseconds, "
                f"got {self.min_repeat_ms!r}"
            )
        if not _is_int(self.profile_nodes) or self.profile_nodes < 0:
            raise ValueError(f"--profile-nodes must be a non-negative integer, got {self.profile_nodes!r}")
        if not _is_int(self.tvm_tune_trials) or self.tvm_tune_trials < 0:
            raise ValueError(f"--tvm-tune-trials must be a non-negative integer, got {self.tvm_tune_trials!r}")
        if not isinstance(self.tvm_target, str):
            raise ValueError(f"--tvm-target must be a JSON string, got {self.tvm_target!r}")
        if not isinstance(self.tvm_db, str) or (self.tvm_db and (len(self.tvm_db) != 64 or self.tvm_db.strip("0123456789abcdef"))):
            raise ValueError(f"tvm_db must be a database's sha256 content hash (64 hex digits), got {self.tvm_db!r}")
        if self.protocol not in PROTOCOLS:
            raise ValueError(f"--protocol must be one of {', '.join(PROTOCOLS)}, got {self.protocol!r}")
        if not _is_int(self.min_rounds) or self.min_rounds < 1:
            raise ValueError(f"--min-rounds must be a positive integer, got {self.min_rounds!r}")
        if not _is_int(self.max_rounds) or self.max_rounds < self.min_rounds:
            raise ValueError(f"--max-rounds must be an integer >= --min-rounds ({self.min_rounds}), got {self.max_rounds!r}")
        if not _is_number(self.target_rel_ci) or not 0 < self.target_rel_ci < 1:
            raise ValueError(f"--target-ci must be a fraction in (0, 1), e.g. 0.01 for +-1%, got {self.target_rel_ci!r}")
        if not _is_number(self.time_cap_s) or self.time_cap_s <= 0:
            raise ValueError(f"--time-cap-s must be a positive number of seconds per model, got {self.time_cap_s!r}")
        if not _is_int(self.batch_size) or self.batch_size < 1:
            raise ValueError(f"--batch-size must be a positive integer, got {self.batch_size!r}")
        if not _is_number(self.timeout_s) or self.timeout_s <= 0:
            raise ValueError(
                f"--timeout-s must be a positive number of seconds, got {self.timeout_s!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """All fields as a JSON-able dict (what is stored as ``MeasurementRecord.config``)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasureConfig:
        """Inverse of :meth:`to_dict`; unknown keys are ignored (forward compatibility)."""
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})

    def config_hash(self) -> str:
        """Hex sha256 of the canonical JSON of the fields in :data:`HASHED_FIELDS`.

        Canonical: sorted keys, no whitespace, ``min_repeat_ms`` as a float (so ``20`` and
        ``20.0`` hash alike). ``timeout_s`` is excluded. For ``runtime == "tvm"`` the target and
        tuning trials are hashed too; for the ``interleaved`` protocol its rounds, target and
        reference panel (:data:`REFERENCE_PANEL`) instead of ``repeats`` (so ``sequential``
        onnxruntime hashes are what they always were).
        """
        data = {name: getattr(self, name) for name in HASHED_FIELDS}
        if self.interleaved:
            del data["repeats"]
            data.update({name: getattr(self, name) for name in INTERLEAVED_HASHED_FIELDS})
            data["target_rel_ci"] = float(data["target_rel_ci"])
            data["references"] = REFERENCE_PANEL
        if self.runtime == "tvm":
            data.update(tvm_target=self.tvm_target, tvm_tune_trials=self.tvm_tune_trials)
            if self.tvm_db:
                data["tvm_db"] = self.tvm_db
        data["min_repeat_ms"] = float(data["min_repeat_ms"])
        text = json.dumps(data, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class MeasureResult:
    """Outcome of measuring one model under a :class:`MeasureConfig`. Failures are data.

    Attributes:
        status: ``Status.OK``, ``Status.ERROR`` (load/run failure, worker crash) or
            ``Status.TIMEOUT``.
        samples_ms: the ``repeats`` per-call latencies in ms (empty unless ok).
        number: calls per repeat chosen by calibration (None unless ok).
        stats: statistics of ``samples_ms`` (None unless ok).
        error: one-line message when not ok, else None.
        environment: facts gathered while measuring (load time, session providers, ...).
    """

    status: Status
    samples_ms: tuple[float, ...] = ()
    number: int | None = None
    stats: Stats | None = None
    error: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the status is ``Status.OK``."""
        return self.status is Status.OK

    @classmethod
    def success(
        cls, samples_ms: list[float] | tuple[float, ...], number: int,
        environment: dict[str, Any] | None = None,
    ) -> MeasureResult:
        """An ok result; statistics are computed from ``samples_ms``."""
        samples = tuple(float(s) for s in samples_ms)
        return cls(
            Status.OK, samples, int(number), summarize(samples), None, dict(environment or {})
        )

    @classmethod
    def failure(
        cls, status: Status, error: str, environment: dict[str, Any] | None = None
    ) -> MeasureResult:
        """A failed result (``error`` or ``timeout``) carrying a one-line message."""
        return cls(Status(status), error=one_line(error), environment=dict(environment or {}))

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stats are omitted: :meth:`from_dict` recomputes them)."""
        return {
            "status": self.status.value,
            "samples_ms": list(self.samples_ms),
            "number": self.number,
            "error": self.error,
            "environment": self.environment,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MeasureResult:
        """Inverse of :meth:`to_dict`."""
        status = Status(data["status"])
        if status is Status.OK:
            return cls.success(data["samples_ms"], data["number"], data.get("environment"))
        return cls.failure(status, data.get("error") or status.value, data.get("environment"))


def one_line(message: object, limit: int = 500) -> str:
    """Collapses whitespace (newlines included) and truncates to ``limit`` characters."""
    text = " ".join(str(message).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."
