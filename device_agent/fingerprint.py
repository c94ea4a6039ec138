"""Device fingerprint (static facts, hence the device id) and environment (dynamic facts).

Everything here is read from ``/proc``, ``/sys`` and :mod:`platform` and is tolerant of missing or
unreadable files: a fact that cannot be read is absent or None, never an exception. Nothing is
read at import time.
"""

from __future__ import annotations

import glob
import hashlib
import json
import os
import platform
import socket
import sys
from typing import Any

#: Static fields that define the device id (see :func:`device_id`).
ID_FIELDS = (
    "name", "cpu_model", "board", "machine", "logical_cores", "physical_cores",
    "memory_gib", "system",
)

#: CPU feature flags worth recording (x86 and ARM names); the rest of the flag list is dropped.
_FLAGS_OF_INTEREST = (
    "sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
    "avx512_bf16", "avx_vnni", "amx_tile", "amx_int8", "amx_bf16",
    "neon", "asimd", "asimdhp", "asimddp", "fphp", "sve", "sve2", "i8mm", "bf16",
)

_THREAD_ENV_VARS = (
    "OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS",
    "ORT_NUM_THREADS", "TVM_NUM_THREADS", "GOMP_CPU_AFFINITY", "KMP_AFFINITY",
)


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read()
    except (OSError, ValueError):
        return None


def _read_strip(path: str) -> str | None:
    text = _read(path)
    if text is None:
        return None
    text = text.strip().strip("\x00").strip()
    return text or None


def _cpuinfo() -> tuple[dict[str, str], list[dict[str, str]]]:
    """Parses /proc/cpuinfo into (global fields, per-processor blocks)."""
    text = _read("/proc/cpuinfo") or ""
    blocks: list[dict[str, str]] = []
    current: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            if current:
                blocks.append(current)
                current = {}
            continue
        key, sep, value = line.partition(":")
        if sep:
            current[key.strip()] = value.strip()
    if current:
        blocks.append(current)
    merged: dict[str, str] = {}
    for block in blocks:
        for key, value in block.items():
            merged.setdefault(key, value)
    return merged, [b for b in blocks if "processor" in b]


def _cpu_model(info: dict[str, str]) -> str:
    for key in ("model name", "Model", "Hardware", "cpu model", "Processor", "cpu"):
        if info.get(key):
            return info[key]
    if info.get("CPU part"):
        return f"{info.get('CPU implementer', '?')}:{info['CPU part']}"
    return platform.processor() or platform.machine() or "unknown"


def _physical_cores(blocks: list[dict[str, str]]) -> int | None:
    pairs = {(b.get("physical id"), b.get("core id")) for b in blocks if "core id" in b}
    if pairs:
        return len(pairs)
    topo = set()
    for cpu in glob.glob("/sys/devices/system/cpu/cpu[0-9]*/topology"):
        core = _read_strip(os.path.join(cpu, "core_id"))
        pkg = _read_strip(os.path.join(cpu, "physical_package_id"))
        cluster = _read_strip(os.path.join(cpu, "cluster_id"))
        if core is not None:
            topo.add((pkg, cluster, core))
    return len(topo) or None


def _memory_total_bytes() -> int | None:
    for line in (_read("/proc/meminfo") or "").splitlines():
        if line.startswith("MemTotal:"):
            parts = line.split()
            try:
                return int(parts[1]) * 1024
            except (IndexError, ValueError):
                break
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    except (AttributeError, ValueError, OSError):
        return None


def _os_release() -> str | None:
    for line in (_read("/etc/os-release") or "").splitlines():
        if line.startswith("PRETTY_NAME="):
            return line.split("=", 1)[1].strip().strip('"') or None
    return None


def hostname() -> str:
    """This machine's host name (``"unknown"`` when it has none): a device's default name."""
    return socket.gethostname() or platform.node() or "unknown"


def device_fingerprint(name: str | None = None) -> dict[str, Any]:
    """Static facts about this device.

    Args:
        name: human label (``--device-name``); defaults to the hostname.

    Returns:
        JSON-able dict with ``name``, ``hostname``, ``cpu_model``, ``board`` (device-tree model on
        Raspberry Pi / Jetson, else None), ``machine``, ``logical_cores``, ``physical_cores``,
        ``memory_total_bytes``, ``memory_gib`` (rounded), ``system``, ``os``, ``kernel``,
        ``python`` and ``cpu_flags`` (a subset of interesting flags). Missing facts are None.
    """
    info, blocks = _cpuinfo()
    host = hostname()
    mem = _memory_total_bytes()
    flags_text = info.get("flags") or info.get("Features") or ""
    present = set(flags_text.split())
    return {
        "name": name or host,
        "hostname": host,
        "cpu_model": _cpu_model(info),
        "board": _read_strip("/proc/device-tree/model")
        or _read_strip("/sys/firmware/devicetree/base/model"),
        "machine": platform.machine() or None,
        "logical_cores": os.cpu_count(),
        "physical_cores": _physical_cores(blocks) or os.cpu_count(),
        "memory_total_bytes": mem,
        # Rounded: MemTotal moves by a few MiB across kernel versions; the id must not.
        "memory_gib": max(1, round(mem / 2**30)) if mem else None,
        "system": platform.system() or None,
        "os": _os_release() or platform.platform(terse=True),
        "kernel": platform.release() or None,
        "python": platform.python_version(),
        "cpu_flags": [f for f in _FLAGS_OF_INTEREST if f in present],
    }


def device_id(fingerprint: dict[str, Any]) -> str:
    """Stable 16-hex id of a device: sha256 of the canonical JSON of :data:`ID_FIELDS`.

    The id covers the hardware (CPU model, board, machine, core counts, memory rounded to GiB), the
    OS family and the device ``name``. The name is included on purpose so that two logical devices
    on the same hardware (say ``pi4-governor-performance`` and ``pi4-powersave``, or two identical
    boards) can be told apart; by default the name is the hostname. Kernel, OS release and Python
    version are excluded: upgrading software does not make a new device (they are recorded in each
    measurement's environment instead).
    """
    data = {key: fingerprint.get(key) for key in ID_FIELDS}
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _cpufreq() -> dict[str, Any]:
    """Governor and frequencies (MHz) of each CPU with a readable cpufreq directory."""
    governors: dict[str, str] = {}
    cur: dict[str, float] = {}
    lim: dict[str, tuple[float | None, float | None]] = {}

    def mhz(path: str) -> float | None:
        text = _read_strip(path)
        try:
            return round(int(text) / 1000.0, 1) if text is not None else None
        except ValueError:
            return None

    for d in sorted(glob.glob("/sys/devices/system/cpu/cpu[0-9]*/cpufreq")):
        cpu = os.path.basename(os.path.dirname(d))
        gov = _read_strip(os.path.join(d, "scaling_governor"))
        if gov:
            governors[cpu] = gov
        f = mhz(os.path.join(d, "scaling_cur_freq")) or mhz(os.path.join(d, "cpuinfo_cur_freq"))
        if f is not None:
            cur[cpu] = f
        lim[cpu] = (mhz(os.path.join(d, "scaling_min_freq")),
                    mhz(os.path.join(d, "scaling_max_freq")))
    out: dict[str, Any] = {}
    values = set(governors.values())
    out["cpu_governor"] = values.pop() if len(values) == 1 else (governors or None)
    out["cpu_freq_mhz"] = cur or None
    mins = {v[0] for v in lim.values() if v[0] is not None}
    maxs = {v[1] for v in lim.values() if v[1] is not None}
    out["cpu_freq_min_mhz"] = min(mins) if mins else None
    out["cpu_freq_max_mhz"] = max(maxs) if maxs else None
    return out


def _runtime_facts(runtime: str) -> dict[str, Any]:
    if runtime != "onnxruntime":
        return {}
    try:
        import onnxruntime  # lazy: heavy, and only needed for this runtime
    except ImportError as exc:  # pragma: no cover - the agent requires onnxruntime
        return {"onnxruntime_error": str(exc)}
    return {
        "onnxruntime_version": onnxruntime.__version__,
        "onnxruntime_providers": list(onnxruntime.get_available_providers()),
    }


def environment(config: Any = None) -> dict[str, Any]:
    """Dynamic facts at measurement time.

    Args:
        config: the :class:`~device_agent.protocol.MeasureConfig` in use (only ``runtime`` and
            ``threads`` are read), or None.

    Returns:
        JSON-able dict: ``cpu_governor`` (one string, or per-CPU dict when they differ),
        ``cpu_freq_mhz`` (per CPU), ``cpu_freq_min_mhz``/``cpu_freq_max_mhz``, runtime version and
        available providers, ``numpy_version``, ``threads`` (configured), ``thread_env`` (set
        threading variables such as ``OMP_NUM_THREADS``), ``cpu_affinity`` (usable CPUs),
        ``loadavg``, ``kernel``, ``python`` and ``agent_version``. Unreadable facts are None.
    """
    from device_agent import __version__

    runtime = getattr(config, "runtime", "onnxruntime")
    env: dict[str, Any] = dict(_cpufreq())
    env.update(_runtime_facts(runtime))
    try:
        import numpy

        env["numpy_version"] = numpy.__version__
    except ImportError:  # pragma: no cover
        env["numpy_version"] = None
    env["threads"] = getattr(config, "threads", None)
    env["thread_env"] = {k: os.environ[k] for k in _THREAD_ENV_VARS if k in os.environ}
    try:
        env["cpu_affinity"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        env["cpu_affinity"] = None
    try:
        env["loadavg"] = [round(v, 2) for v in os.getloadavg()]
    except (AttributeError, OSError):
        env["loadavg"] = None
    env["kernel"] = platform.release() or None
    env["python"] = platform.python_version()
    env["python_executable"] = sys.executable
    env["agent_version"] = __version__
    return env


def read_temperatures() -> dict[str, float]:
    """Temperatures in degrees Celsius from ``/sys/class/thermal/thermal_zone*/temp``.

    Keys are the zone's ``type`` (``cpu-thermal``, ``x86_pkg_temp``...), suffixed with the zone
    name when two zones share a type. Unreadable zones are skipped; no thermal zones -> ``{}``.
    """
    temps: dict[str, float] = {}
    for zone in sorted(glob.glob("/sys/class/thermal/thermal_zone*")):
        raw = _read_strip(os.path.join(zone, "temp"))
        if raw is None:
            continue
        try:
            value = int(raw) / 1000.0
        except ValueError:
            continue
        label = _read_strip(os.path.join(zone, "type")) or os.path.basename(zone)
        if label in temps:
            label = f"{label}:{os.path.basename(zone)}"
        temps[label] = round(value, 1)
    return temps
