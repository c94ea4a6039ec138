"""A throwaway OpenSSH server on 127.0.0.1 for tests and benches (Debian's ``openssh-server``).

:func:`start_sshd` writes a host key, an ``authorized_keys`` with the given public key and a
minimal ``sshd_config`` (key login only, ``StrictModes no`` so keys may live under /tmp, SFTP
in-process) into a folder, and starts ``sshd -D`` on a free port. It stands for a device in the
remote-profiling tests and ``bench/profile_ssh.py``; it is never used to reach a real device.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

SSHD = shutil.which("sshd") or "/usr/sbin/sshd"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_key(path: Path) -> Path:
    """A new passphrase-less ed25519 key pair at ``path`` (and ``path.pub``)."""
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(path)], check=True)
    return path


def start_sshd(folder: Path, client_pub: str, timeout_s: float = 5.0) -> tuple[subprocess.Popen[bytes], int]:
    """Start sshd serving ``folder``'s config; ``(process, port)``. ``RuntimeError`` if it does not
    listen within ``timeout_s`` or is not installed."""
    if not Path(SSHD).exists():
        raise RuntimeError("sshd is not installed (Debian: apt-get install openssh-server)")
    folder.mkdir(parents=True, exist_ok=True)
    if not (folder / "host_key").exists():
        make_key(folder / "host_key")
    (folder / "authorized_keys").write_text(client_pub)
    port = free_port()
    (folder / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {folder / 'host_key'}\n"
        f"AuthorizedKeysFile {folder / 'authorized_keys'}\nPidFile {folder / 'sshd.pid'}\nStrictModes no\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
        "PermitRootLogin prohibit-password\nSubsystem sftp internal-sftp\n"
    )
    Path("/run/sshd").mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen([SSHD, "-D", "-e", "-f", str(folder / "sshd_config")], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc, port
        except OSError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"sshd did not listen on 127.0.0.1:{port} within {timeout_s:g} s")


__all__ = ["SSHD", "free_port", "make_key", "start_sshd"]
