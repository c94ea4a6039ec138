"""SSH connections to devices with paramiko: target parsing, ``~/.ssh/config``, strict host keys.

Host keys are always verified against a known_hosts file (default ``~/.ssh/known_hosts``): an unknown
key is refused with its SHA256 fingerprint and the flag that accepts it (``accept_new=True``, which
then records it in that file); a key that differs from the recorded one is always refused. Every
remote command is built with :func:`remote_command`, which ``shlex.quote``\\ s each argument.

Example:
    >>> t = SSHTarget.parse("pi@raspberrypi.local:2222")
    >>> (t.user, t.host, t.port)
    ('pi', 'raspberrypi.local', 2222)
    >>> remote_command(["python3", "-m", "device_agent", "--device-name", "a b; rm -rf /"])
    "python3 -m device_agent --device-name 'a b; rm -rf /'"
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shlex
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

if TYPE_CHECKING:
    import paramiko

_TARGET = re.compile(r"^(?:(?P<user>[^@\s:]+)@)?(?P<host>[^@\s:]+)(?::(?P<port>\d+))?$")


class HostKeyError(Exception):
    """An unknown or changed host key; the message says what to do."""


@dataclass(frozen=True)
class SSHTarget:
    """Where to connect: user (None: the current user), host, port and an optional identity file."""

    host: str
    user: str | None = None
    port: int = 22
    identity: str | None = None

    @classmethod
    def parse(cls, text: str) -> SSHTarget:
        """``[user@]host[:port]``; ``ValueError`` (one line) otherwise."""
        m = _TARGET.match(str(text).strip())
        if not m:
            raise ValueError(f"--host must read [user@]host[:port], got {text!r}")
        port = int(m["port"]) if m["port"] else 22
        if not 0 < port < 65536:
            raise ValueError(f"--host port must be in 1..65535, got {port}")
        return cls(host=m["host"], user=m["user"], port=port)

    @classmethod
    def from_flags(cls, host: str, identity: str | None = None, ssh_config: str | None = None) -> SSHTarget:
        """The target of the ``--host``, ``--identity`` and ``--ssh-config`` flags: ``host``
        parsed, the identity file set, then ``~/.ssh/config`` applied; ``ValueError`` (one line)."""
        target = cls.parse(host)
        if identity:
            target = replace(target, identity=identity)
        return target.with_ssh_config(ssh_config)

    def with_ssh_config(self, path: str | os.PathLike[str] | None = None) -> SSHTarget:
        """Apply a ``Host`` alias of ``~/.ssh/config`` (HostName, User, Port, IdentityFile); values
        given explicitly (user, a port other than 22, identity) win."""
        import paramiko

        p = Path(path) if path is not None else Path.home() / ".ssh" / "config"
        if not p.is_file():
            return self
        cfg = paramiko.SSHConfig.from_path(str(p)).lookup(self.host)
        files = cfg.get("identityfile") or []
        return replace(
            self, host=cfg.get("hostname", self.host), user=self.user or cfg.get("user"),
            port=self.port if self.port != 22 else int(cfg.get("port", 22)),
            identity=self.identity or (os.path.expanduser(files[0]) if files else None),
        )

    @property
    def known_hosts_name(self) -> str:
        """The host's name in known_hosts (``[host]:port`` for a port other than 22)."""
        return self.host if self.port == 22 else f"[{self.host}]:{self.port}"


def fingerprint(key: paramiko.PKey) -> str:
    """OpenSSH-style ``SHA256:...`` fingerprint of a host key."""
    digest = hashlib.sha256(key.asbytes()).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


class _StrictPolicy:
    """paramiko missing-host-key policy: refuse (with the fingerprint), or accept and record."""

    def __init__(self, known_hosts: Path, accept_new: bool) -> None:
        self.known_hosts, self.accept_new = known_hosts, accept_new

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        fp = fingerprint(key)
        if not self.accept_new:
            raise HostKeyError(f"unknown host key for {hostname} ({key.get_name()} {fp}); check it, then "
                               f"re-run with --accept-new-host-key to record it in {self.known_hosts}")
        client.get_host_keys().add(hostname, key.get_name(), key)
        self.known_hosts.parent.mkdir(parents=True, exist_ok=True)
        with self.known_hosts.open("a", encoding="utf-8") as fh:
            fh.write(f"{hostname} {key.get_name()} {key.get_base64()}\n")


def connect(target: SSHTarget, known_hosts: str | os.PathLike[str] | None = None, accept_new: bool = False,
            timeout_s: float = 15.0) -> paramiko.SSHClient:
    """An authenticated :class:`paramiko.SSHClient` (keys from ``target.identity``, the agent or
    ``~/.ssh``). Raises :class:`HostKeyError` for an unknown (unless ``accept_new``) or changed key,
    ``ConnectionError`` (one line) when the device does not answer or refuses the login."""
    import socket

    import paramiko

    kh = Path(known_hosts) if known_hosts is not None else Path.home() / ".ssh" / "known_hosts"
    client = paramiko.SSHClient()
    if kh.is_file():
        client.load_host_keys(str(kh))
    client.set_missing_host_key_policy(_StrictPolicy(kh, accept_new))  # type: ignore[arg-type]
    try:  # wait for the server's banner ourselves: a device that accepts but never speaks times out here
        sock = socket.create_connection((target.host, target.port), timeout=timeout_s)
        sock.settimeout(timeout_s)
        if not sock.recv(4, socket.MSG_PEEK):
            sock.close()
            raise ConnectionError(f"{target.host}:{target.port} closed the connection before its SSH banner")
    except (socket.timeout, TimeoutError):
        client.close()
        raise ConnectionError(f"{target.host}:{target.port} did not answer within {timeout_s:g} s") from None
    except OSError as exc:
        client.close()
        raise ConnectionError(f"cannot connect to {target.host}:{target.port}: {exc.strerror or exc}") from None
    try:
        client.connect(target.host, port=target.port, username=target.user, key_filename=target.identity, sock=sock,
                       timeout=timeout_s, banner_timeout=timeout_s, auth_timeout=timeout_s,
                       allow_agent=target.identity is None, look_for_keys=target.identity is None)  # fmt: skip
    except paramiko.BadHostKeyException as exc:
        client.close()
        raise HostKeyError(f"the host key of {target.known_hosts_name} CHANGED (now {fingerprint(exc.key)}, "
                           f"{kh} has {fingerprint(exc.expected_key)}): refusing to connect; if the device was "
                           f"reinstalled, remove its line from {kh}") from None
    except HostKeyError:
        client.close()
        raise
    except (socket.timeout, TimeoutError) as exc:
        client.close()
        raise ConnectionError(f"{target.host}:{target.port} did not answer within {timeout_s:g} s ({exc})") from None
    except (OSError, paramiko.SSHException) as exc:
        client.close()
        text = " ".join(str(exc).split())
        raise ConnectionError(f"cannot log in to {target.host}:{target.port}: {text}") from None
    return client


def remote_command(argv: Sequence[str], cwd: str | None = None) -> str:
    """A POSIX shell command line running ``argv`` (each argument quoted) in ``cwd``."""
    line = " ".join(shlex.quote(str(a)) for a in argv)
    return f"cd {shlex.quote(cwd)} && {line}" if cwd else line


def run(client: paramiko.SSHClient, command: str, timeout_s: float = 60.0) -> tuple[int, str, str]:
    """Run ``command``; ``(exit status, stdout, stderr)``. ``TimeoutError`` past ``timeout_s``."""
    _, out, err = client.exec_command(command, timeout=timeout_s)
    try:
        o, e = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    except OSError as exc:  # socket.timeout
        raise TimeoutError(f"remote command timed out after {timeout_s:g} s: {command[:80]}") from exc
    return out.channel.recv_exit_status(), o, e


def stream(client: paramiko.SSHClient, command: str, on_line: Any, idle_timeout_s: float = 600.0) -> int:
    """Run ``command``, calling ``on_line(text)`` for each line of its stderr+stdout as it arrives;
    returns the exit status. ``TimeoutError`` when nothing arrives for ``idle_timeout_s``."""
    chan = client.get_transport().open_session()  # type: ignore[union-attr]
    chan.set_combine_stderr(True)
    chan.settimeout(idle_timeout_s)
    chan.exec_command(command)
    buf = b""
    try:
        while True:
            data = chan.recv(4096)
            if not data:
                break
            buf += data
            *lines, buf = re.split(rb"[\r\n]", buf)
            for line in lines:
                if line.strip():
                    on_line(line.decode(errors="replace"))
    except OSError as exc:
        raise TimeoutError(f"no output from the device for {idle_timeout_s:g} s") from exc
    if buf.strip():
        on_line(buf.decode(errors="replace"))
    status = chan.recv_exit_status()
    if status == -1:  # the channel closed without an exit status: the connection dropped
        raise EOFError("the connection closed before the remote command ended")
    return status


__all__ = ["HostKeyError", "SSHTarget", "connect", "fingerprint", "remote_command", "run", "stream"]
