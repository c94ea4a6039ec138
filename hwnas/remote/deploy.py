"""Deploy the device agent over SSH: a wheel of this checkout into a virtual environment on the device.

:func:`build_wheel` builds the wheel of the installed hwnas source tree (``pip wheel --no-deps``)
into a cache folder; :func:`deploy_agent` uploads it by SFTP and installs it into
``<remote_dir>/venv`` with the device's own pip, so numpy and onnxruntime come from the device's
package index, built for its platform (an ARM board gets ARM wheels). An install whose wheel sha256
matches the one recorded in the venv is skipped (:func:`wheel_digest`: contents, not timestamps). torch is never installed: the bare distribution is
the agent.
"""

from __future__ import annotations

import hashlib
import posixpath
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

from hwnas.remote.ssh import remote_command, run

_MARKER = ".hwnas-wheel-sha256"


def source_root() -> Path:
    """The source tree hwnas is installed from (the folder holding ``pyproject.toml``)."""
    import hwnas

    root = Path(hwnas.__file__).resolve().parent.parent
    if not (root / "pyproject.toml").is_file():
        raise RuntimeError(f"hwnas is not installed from a source tree ({root}): install the agent on the "
                           "device yourself (pip install hwnas) and pass --no-install")
    return root


def build_wheel(out_dir: Path) -> Path:
    """Build the hwnas wheel of :func:`source_root` into ``out_dir``; its path."""
    root = source_root()
    out_dir.mkdir(parents=True, exist_ok=True)
    for isolation in (["--no-build-isolation"], []):
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation,
                               "-w", str(out_dir), str(root)], capture_output=True, text=True)  # fmt: skip
        if proc.returncode == 0:
            break
    else:
        raise RuntimeError(f"building the hwnas wheel failed: {' '.join(proc.stderr.split())[-300:]}")
    wheels = sorted(out_dir.glob("hwnas-*.whl"), key=lambda p: p.stat().st_mtime)
    if not wheels:
        raise RuntimeError(f"pip wheel made no hwnas wheel in {out_dir}")
    return wheels[-1]


def wheel_digest(wheel: Path) -> str:
    """sha256 over the wheel's file names and contents (not its zip timestamps, which change with
    every build), so an unchanged checkout is recognised as installed."""
    import zipfile

    h = hashlib.sha256()
    with zipfile.ZipFile(wheel) as zf:
        for name in sorted(zf.namelist()):
            h.update(name.encode() + b"\0" + zf.read(name) + b"\0")
    return h.hexdigest()


def deploy_agent(client: Any, base: str, python: str, wheel: Path,
                 on_line: Callable[[str], None] = lambda line: None, timeout_s: float = 900.0,
                 extras: tuple[str, ...] = ()) -> str:
    """Install ``wheel`` (with ``extras``, e.g. ``("tvm",)``) into ``<base>/venv`` on the device (made
    with ``python -m venv``); returns the venv's python. ``RuntimeError`` (one line) when a step fails."""
    venv = posixpath.join(base, "venv")
    vpy = posixpath.join(venv, "bin", "python")
    sha = wheel_digest(wheel) + "".join(f"+{e}" for e in sorted(extras))
    code, out, _ = run(client, remote_command(["cat", posixpath.join(venv, _MARKER)]))
    if code == 0 and out.strip() == sha:
        return vpy
    on_line(f"installing the agent into {venv} (numpy, onnxruntime from the device's package index)")
    code, _, err = run(client, remote_command([python, "-m", "venv", venv]), timeout_s=timeout_s)
    if code != 0:
        raise RuntimeError(f"{python} -m venv {venv} failed on the device: {' '.join(err.split())[-300:]}")
    remote_wheel = posixpath.join(base, wheel.name)
    sftp = client.open_sftp()
    try:
        sftp.put(str(wheel), remote_wheel)
    finally:
        sftp.close()
    pip = [vpy, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    spec = remote_wheel + (f"[{','.join(sorted(extras))}]" if extras else "")
    for extra, target in (([], spec), (["--no-deps", "--force-reinstall"], remote_wheel)):  # deps, then this code
        code, _, err = run(client, remote_command([*pip, *extra, target]), timeout_s=timeout_s)
        if code != 0:
            raise RuntimeError(f"pip install of the agent failed on the device: {' '.join(err.split())[-300:]}")
    run(client, remote_command([vpy, "-c", "import sys; open(sys.argv[1], 'w').write(sys.argv[2])",
                                posixpath.join(venv, _MARKER), sha]))  # fmt: skip
    return vpy


__all__ = ["build_wheel", "deploy_agent", "source_root", "wheel_digest"]
