"""Unit tests of the device agent that need no ONNX model: protocol config, statistics, the
timing protocol against a fake clock, device fingerprint."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from device_agent.fingerprint import device_fingerprint, device_id, environment, read_temperatures
from device_agent.protocol import HASHED_FIELDS, MeasureConfig
from device_agent.runtimes.tvm_rt import parse_target
from device_agent.runtimes import resolve_config
from device_agent.runtimes.ort import time_model
from device_agent.stats import median_ci_ranks, summarize

FAST_CONFIG = MeasureConfig(warmup=1, repeats=3, min_repeat_ms=1.0, timeout_s=30.0)


# -- protocol config -------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs, message", [
    ({"repeats": 0}, "--repeats must be a positive integer, got 0"),
    ({"repeats": -3}, "--repeats must be a positive integer, got -3"),
    ({"warmup": -1}, "--warmup must be a non-negative integer, got -1"),
    ({"min_repeat_ms": 0.0}, "--min-repeat-ms must be a positive number of milliseconds, got 0.0"),
    ({"timeout_s": -1.0}, "--timeout-s must be a positive number of seconds, got -1.0"),
    ({"threads": -2}, "--threads must be a non-negative integer (0 = runtime default), got -2"),
    ({"timeout_s": float("nan")}, "--timeout-s must be a positive number of seconds, got nan"),
    ({"protocol": "fast"}, "--protocol must be one of interleaved, sequential, got 'fast'"),
    ({"min_rounds": 0}, "--min-rounds must be a positive integer, got 0"),
    ({"max_rounds": 5}, "--max-rounds must be an integer >= --min-rounds (20), got 5"),
    ({"target_rel_ci": 1.5}, "--target-ci must be a fraction in (0, 1), e.g. 0.01 for +-1%, got 1.5"),
    ({"time_cap_s": 0.0}, "--time-cap-s must be a positive number of seconds per model, got 0.0"),
    ({"batch_size": 0}, "--batch-size must be a positive integer, got 0"),
])
def test_config_validation_messages(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError) as info:
        MeasureConfig(**kwargs).validate()
    assert str(info.value) == message


def test_config_defaults_hash_and_roundtrip() -> None:
    cfg = MeasureConfig()
    cfg.validate()
    MeasureConfig(warmup=0).validate()  # warm-up may be 0
    assert (cfg.warmup, cfg.repeats, cfg.min_repeat_ms) == (10, 20, 20.0)
    assert (cfg.timeout_s, cfg.threads) == (120.0, 0)
    assert (cfg.runtime, cfg.provider) == ("onnxruntime", "cpu")
    assert MeasureConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.config_hash() == MeasureConfig(timeout_s=5).config_hash()  # timeout not hashed
    assert cfg.config_hash() == MeasureConfig(min_repeat_ms=20).config_hash()
    assert cfg.protocol == "interleaved" and cfg.config_hash() == MeasureConfig(repeats=21).config_hash()
    seq = MeasureConfig(protocol="sequential")
    assert seq.config_hash() != MeasureConfig(protocol="sequential", repeats=21).config_hash()
    assert seq.config_hash() != cfg.config_hash()
    for changed in ({"min_rounds": 10}, {"max_rounds": 50}, {"target_rel_ci": 0.02}):
        assert MeasureConfig(**changed).config_hash() != cfg.config_hash()  # type: ignore[arg-type]
    for same in ({"time_cap_s": 9.0}, {"batch_size": 3}):  # how long / how many at once, not how
        assert MeasureConfig(**same).config_hash() == cfg.config_hash()  # type: ignore[arg-type]
    assert resolve_config(MeasureConfig(provider="CPUExecutionProvider")).provider == "cpu"


# -- statistics ------------------------------------------------------------------------------------


def test_stats_on_known_samples() -> None:
    s = summarize([float(v) for v in range(20, 0, -1)])  # 1..20, unsorted
    assert (s.n, s.median, s.mean, s.min, s.max) == (20, 10.5, 10.5, 1.0, 20.0)
    assert s.p90 == pytest.approx(18.1) and s.p99 == pytest.approx(19.81)
    assert s.std == pytest.approx(np.std(np.arange(1, 21), ddof=1))
    assert median_ci_ranks(20) == (6, 15) and (s.ci_low, s.ci_high) == (6.0, 15.0)
    assert median_ci_ranks(6) == (1, 6) and median_ci_ranks(10) == (2, 9)
    assert median_ci_ranks(100) == (40, 61)
    tiny = summarize([3.0, 1.0, 2.0])  # n <= 5: no pair reaches 95%, fall back to min/max
    assert median_ci_ranks(3) is None
    assert (tiny.ci_low, tiny.ci_high, tiny.median) == (1.0, 3.0, 2.0)
    one = summarize([4.2])
    assert (one.std, one.ci_low, one.ci_high, one.p99) == (0.0, 4.2, 4.2, 4.2)
    with pytest.raises(ValueError):
        summarize([])


# -- timing protocol -------------------------------------------------------------------------------


class _FakeClock:
    """Stands in for the ``time`` module: ``perf_counter_ns`` advances only when the fake runs."""

    def __init__(self) -> None:
        self.now = 0

    def perf_counter_ns(self) -> int:
        return self.now


class _FakeSession:
    """A named fake of an InferenceSession whose calls take a known time: ``start_us`` per call,
    falling linearly to ``end_us`` over the first ``ramp`` calls (a model that warms up)."""

    def __init__(self, clock: _FakeClock, start_us: float, end_us: float, ramp: int) -> None:
        self.clock, self.start_us, self.end_us, self.ramp = clock, start_us, end_us, ramp
        self.calls = 0

    def run(self, _outputs: object, _feeds: object) -> None:
        frac = min(self.calls / self.ramp, 1.0)
        self.clock.now += round((self.start_us + (self.end_us - self.start_us) * frac) * 1000)
        self.calls += 1


# -- TVM pieces that need no TVM ------------------------------------------------------------------


def test_parse_target_forms_and_refusals() -> None:
    assert parse_target("", threads=3) == {"kind": "llvm", "num-cores": 3}
    assert parse_target("llvm") == {"kind": "llvm"}
    assert parse_target('{"kind": "llvm", "mtriple": "aarch64-linux-gnu"}')["mtriple"] == "aarch64-linux-gnu"
    with pytest.raises(ValueError, match="refuses target strings with options"):
        parse_target("llvm -mcpu=cortex-a72")
    with pytest.raises(ValueError, match="not valid JSON"):
        parse_target("{kind: llvm}")
    with pytest.raises(ValueError, match='"kind"'):
        parse_target('{"mcpu": "x"}')


def test_config_hash_unchanged_for_onnxruntime_and_distinct_for_tvm() -> None:
    cfg = MeasureConfig(repeats=5, protocol="sequential")
    data = {n: getattr(cfg, n) for n in HASHED_FIELDS}
    data["min_repeat_ms"] = float(data["min_repeat_ms"])
    legacy = hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    assert cfg.config_hash() == legacy  # sequential measurements taken before tvm and rounds existed still match
    t = MeasureConfig(runtime="tvm", tvm_target='{"kind":"llvm"}')
    hashes = {t.config_hash(), MeasureConfig(runtime="tvm", tvm_target='{"kind":"llvm","num-cores":1}').config_hash(),
              MeasureConfig(runtime="tvm", tvm_target='{"kind":"llvm"}', tvm_tune_trials=8).config_hash()}
    assert len(hashes) == 3
    with pytest.raises(ValueError, match="--tvm-tune-trials"):
        MeasureConfig(runtime="tvm", tvm_tune_trials=-1).validate()


class _FakeVM:
    """A named fake of a TVM Relax VM: a Python call of ``main`` takes 5 ms (interpreter overhead),
    while the time evaluator, TVM's own timer, reports 1 ms per call."""

    def __init__(self) -> None:
        self.python_calls = 0
        self.evaluated: list[int] = []

    def __getitem__(self, name: str) -> object:
        def main(*_inputs: object) -> None:
            self.python_calls += 1

        return main

    def time_evaluator(self, name: str, dev: object, number: int, repeat: int) -> object:
        class _Result:
            results = [1e-3] * repeat

        def run(*_inputs: object) -> _Result:
            self.evaluated.append(number)
            return _Result()

        return run


@pytest.mark.parametrize("rpc", ["", "127.0.0.1:9090"])
def test_tvm_calibrates_number_with_its_time_evaluator(rpc: str) -> None:
    """``number`` comes from the timer the samples are taken with: 1 ms a call -> 13 calls reach
    1.2 x 10 ms (+5%), whatever a Python loop of VM calls would have timed."""
    from device_agent.runtimes.tvm_rt import VmTimer
    from device_agent.runtimes.tvm_rt import time_model as tvm_time_model

    cfg = MeasureConfig(runtime="tvm", warmup=2, repeats=3, min_repeat_ms=10.0, tvm_rpc=rpc)
    vm = _FakeVM()
    samples, number = tvm_time_model(vm, [], None, cfg)
    assert number == 13 and samples == [1.0] * 3
    assert vm.python_calls == (0 if rpc else cfg.warmup)  # warm-up only: calibration never times Python calls
    assert VmTimer(_FakeVM(), [], None, cfg).number == 13


@pytest.mark.parametrize("start_us, end_us, ramp",
                         [(7.0, 7.0, 1), (20.0, 5.0, 2000), (3000.0, 3000.0, 1)])
def test_protocol_with_fake_clock(start_us: float, end_us: float, ramp: int,
                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from device_agent.runtimes import ort as ort_backend

    clock = _FakeClock()
    monkeypatch.setattr(ort_backend, "time", clock)
    session = _FakeSession(clock, start_us, end_us, ramp)
    cfg = MeasureConfig(warmup=2, repeats=5, min_repeat_ms=1.0)
    samples, number = time_model(session, {}, cfg)  # type: ignore[arg-type]
    assert len(samples) == cfg.repeats
    assert all(s * number >= cfg.min_repeat_ms for s in samples), (number, samples)
    if start_us == end_us:  # steady model: the smallest number reaching 1.2 x min_repeat_ms (+5%)
        assert samples == [pytest.approx(start_us / 1000)] * 5
        assert number * start_us >= 1200 and (number - 1) * start_us < 1200 * 1.05 + start_us
    assert (number == 1) == (start_us >= 1200)


def test_fingerprint_and_environment() -> None:
    fp = device_fingerprint("bench-a")
    assert fp["name"] == "bench-a" and fp["logical_cores"] >= 1 and fp["python"]
    did = device_id(fp)
    assert len(did) == 16 and int(did, 16) >= 0
    assert did == device_id(device_fingerprint("bench-a"))  # stable
    assert did != device_id(device_fingerprint("bench-b"))  # the name distinguishes devices
    env = environment(FAST_CONFIG)
    assert env["onnxruntime_version"] and "CPUExecutionProvider" in env["onnxruntime_providers"]
    assert {"cpu_governor", "cpu_freq_mhz", "loadavg", "thread_env", "numpy_version"} <= set(env)
    assert all(isinstance(v, float) for v in read_temperatures().values())
    json.dumps([fp, env])  # JSON-able


# -- drift correction of interleaved batches (device_agent.drift) -----------------------------------


def _interleaved_visits(n_models: int, n_rounds: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Visit times of ``n_models`` visited in a fresh shuffled order each round, and the round order."""
    rng = np.random.default_rng(seed)
    times = [np.zeros(n_rounds) for _ in range(n_models)]
    clock = 0.0
    for r in range(n_rounds):
        for m in rng.permutation(n_models):
            times[m][r] = clock
            clock += 1.0
    return times, np.arange(n_rounds)


def test_drift_shared_by_the_batch_is_divided_out_and_each_models_own_noise_is_kept() -> None:
    from device_agent.drift import local_levels

    rng = np.random.default_rng(0)
    times, _ = _interleaved_visits(12, 30, seed=1)
    true = rng.uniform(0.5, 5.0, 12)

    def level(t: np.ndarray) -> np.ndarray:  # the machine: slow drift plus a 25% fast phase
        return (1.0 + 0.2 * t / 360.0) * np.where((t > 100) & (t < 160), 0.75, 1.0)

    noise = [np.exp(rng.normal(0.0, 0.01, 30)) for _ in range(12)]
    samples = [true[i] * level(times[i]) * noise[i] for i in range(12)]
    levels = local_levels(times, samples)
    raw = np.array([np.std(np.log(s)) for s in samples])
    corrected = np.array([np.std(np.log(s / lv)) for s, lv in zip(samples, levels)])
    assert np.all(raw > 0.08) and np.median(corrected) < 0.03  # drift of 20-35% gone, to ~noise
    # relative latencies stay those of the models
    med = np.array([np.median(s / lv) for s, lv in zip(samples, levels)])
    ratio = (med / true) / np.median(med / true)
    assert np.max(np.abs(ratio - 1.0)) < 0.02
    # a model's own slow visit is its own: the level at that visit comes from other models
    samples[3][10] *= 1.5
    lv3 = local_levels(times, samples)[3]
    assert samples[3][10] / lv3[10] > 1.3 * np.median(samples[3] / lv3)


def test_drift_levels_of_one_series_are_one_and_bad_input_is_refused() -> None:
    from device_agent.drift import local_levels

    (only,) = local_levels([[0.0, 1.0, 2.0]], [[1.0, 2.0, 3.0]])
    assert only.tolist() == [1.0, 1.0, 1.0]
    assert local_levels([], []) == []
    with pytest.raises(ValueError, match="series 1: 2 times for 3 samples"):
        local_levels([[0.0, 1.0], [0.5, 1.5]], [[1.0, 1.0], [1.0, 1.0, 1.0]])
    with pytest.raises(ValueError, match="positive and finite"):
        local_levels([[0.0, 1.0]], [[1.0, -1.0]])
    with pytest.raises(ValueError, match="1 time series for 2 sample series"):
        local_levels([[0.0]], [[1.0], [1.0]])
