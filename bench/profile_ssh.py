"""Remote profiling over SSH against local runs of the same models, on this machine.

Exports ``--n`` NB201 candidates, measures them with a local ``device_agent run`` (A), with
``hwnas profile`` through a real OpenSSH server on 127.0.0.1 (B: upload by SFTP, the agent run over
SSH, the device DB merged back), and locally again (A'). Prints per model the medians and the ratios
B/A and A'/A (the run-to-run drift of this machine, the baseline B/A should be read against), then
the median ratio, the share of models within 10%, the wall time of each path, and how many
measurements B brought into the host DB.

Needs Debian's openssh-server (``make test`` installs it). Run:
``.venv/bin/python bench/profile_ssh.py [--n 30]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

AGENT_FLAGS = ["--threads", "1", "--warmup", "5", "--repeats", "15", "--min-repeat-ms", "10"]


def _medians(db: Path, device: str) -> dict[str, float]:
    from latency_db import LatencyDB

    with LatencyDB(db) as ldb:
        return {m.model_sha256: float(m.median_ms) for m in ldb.measurements(device=device, status="ok")}


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=30, help="candidates (default 30)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    from hwnas.cli import main as hwnas_main
    from hwnas.remote.local_sshd import make_key, start_sshd

    tmp = Path(tempfile.mkdtemp(prefix="hwnas-bench-ssh-"))
    models = tmp / "models"
    assert hwnas_main(["export", "--space", "nb201", "--sample", str(args.n), "--seed", str(args.seed),
                       "--out", str(models)]) == 0  # fmt: skip
    agent = [sys.executable, "-m", "device_agent", "run", "--models", str(models), *AGENT_FLAGS]
    walls = {}
    t0 = time.perf_counter()
    subprocess.run([*agent, "--db", str(tmp / "a.db"), "--device-name", "local-a"], check=True, stdout=subprocess.DEVNULL)
    walls["local A"] = time.perf_counter() - t0

    key = make_key(tmp / "client_key")
    proc, port = start_sshd(tmp / "sshd", key.with_suffix(".pub").read_text())
    try:
        t0 = time.perf_counter()
        code = hwnas_main(["profile", "--host", f"127.0.0.1:{port}", "--identity", str(key), "--known-hosts",
                           str(tmp / "known_hosts"), "--accept-new-host-key", "--no-install", "--python", sys.executable,
                           "--remote-dir", str(tmp / "device"), "--models", str(models), "--db", str(tmp / "host.db"),
                           "--device-name", "ssh-b", *AGENT_FLAGS, "--json"])  # fmt: skip
        walls["ssh B"] = time.perf_counter() - t0
        assert code == 0, f"hwnas profile exited {code}"
    finally:
        proc.terminate()
        proc.wait(5)
    t0 = time.perf_counter()
    subprocess.run([*agent, "--db", str(tmp / "a2.db"), "--device-name", "local-a2"], check=True, stdout=subprocess.DEVNULL)
    walls["local A'"] = time.perf_counter() - t0

    a, b, a2 = _medians(tmp / "a.db", "local-a"), _medians(tmp / "host.db", "ssh-b"), _medians(tmp / "a2.db", "local-a2")
    common = sorted(set(a) & set(b) & set(a2))
    print(f"{'model':>10} {'A ms':>8} {'B ssh ms':>9} {'A2 ms':>8} {'B/A':>6} {'A2/A':>6}")
    rb, ra = [], []
    for sha in common:
        rb.append(b[sha] / a[sha])
        ra.append(a2[sha] / a[sha])
        print(f"{sha[:10]:>10} {a[sha]:>8.3f} {b[sha]:>9.3f} {a2[sha]:>8.3f} {rb[-1]:>6.3f} {ra[-1]:>6.3f}")
    within = lambda rs: sum(abs(r - 1) <= 0.10 for r in rs) / len(rs)  # noqa: E731
    print(f"\n{len(b)} of {args.n} candidates measured over SSH into the host DB ({len(common)} compared)")
    print(f"median B/A (ssh / local) {statistics.median(rb):.3f}, within 10%: {within(rb):.0%}")
    print(f"median A'/A (local drift) {statistics.median(ra):.3f}, within 10%: {within(ra):.0%}")
    print("wall: " + ", ".join(f"{k} {v:.1f} s" for k, v in walls.items()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
