"""Remote profiling pieces that need no SSH server: inventory and ssh_config parsing, the fleet's one
wheel per run, and what a profiling run's merge takes from the device's database."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from hwnas.remote.ssh import SSHTarget


@pytest.mark.parametrize("text,needle", [
    ('[[device]]\nname = "a"\n', "host is required"),
    ('[[device]]\nname = "a"\nhost = "h"\ncolour = "red"\n', "unknown field 'colour'"),
    ('[[device]]\nname = "a"\nhost = "h"\nthreads = "four"\n', "threads must be a int"),
    ('[[device]]\nname = "a"\nhost = "h"\n[[device]]\nname = "a"\nhost = "g"\n', "used twice"),
    ('[[device]]\nname = "a"\nhost = "bad host:"\n', "[user@]host[:port]"),
    ("device = 3\n", "[[device]] tables"),
])
def test_bad_inventory_is_one_line(tmp_path: Path, text: str, needle: str) -> None:
    from hwnas.remote.inventory import load_inventory

    inv = tmp_path / "inv.toml"
    inv.write_text(text)
    with pytest.raises(ValueError, match=re.escape(needle)):
        load_inventory(inv)


def test_ssh_config_alias_and_target_parsing(tmp_path: Path) -> None:
    cfg = tmp_path / "config"
    cfg.write_text("Host pi4\n  HostName 10.0.0.7\n  User pi\n  Port 2202\n  IdentityFile ~/.ssh/pi_key\n")
    t = SSHTarget.parse("pi4").with_ssh_config(cfg)
    assert (t.host, t.user, t.port) == ("10.0.0.7", "pi", 2202) and t.identity and t.identity.endswith("/.ssh/pi_key")
    t = SSHTarget.parse("root@pi4:2300").with_ssh_config(cfg)  # explicit values win
    assert (t.host, t.user, t.port) == ("10.0.0.7", "root", 2300)
    assert SSHTarget.parse("other").with_ssh_config(cfg).host == "other"
    for bad in ("", "a b", "u@h:99999", "h:port", "@h"):
        with pytest.raises(ValueError, match=r"\[user@\]host\[:port\]|port must be"):
            SSHTarget.parse(bad)


def test_the_fleet_builds_its_agent_wheel_once_per_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three devices, one wheel build; every device thread deploys that same wheel. (The devices are
    never reached: ``profile_remote`` is replaced by a named fake that records what it was given.)"""
    from hwnas.remote import deploy, inventory
    from hwnas.remote.inventory import DeviceEntry, profile_fleet
    from hwnas.remote.profile import AgentFlags

    builds: list[Path] = []

    def build_wheel(out_dir: Path) -> Path:
        wheel = out_dir / "hwnas-0-py3-none-any.whl"
        wheel.write_bytes(b"wheel")
        builds.append(wheel)
        return wheel

    def fake_profile_remote(target, models, host_db, *, install, wheel, **kw):
        assert install and wheel is not None and wheel.read_bytes() == b"wheel"
        return {"agent_exit": 0, "merged": {"measurements": 1}, "wheel": str(wheel)}

    monkeypatch.setattr(deploy, "build_wheel", build_wheel)
    monkeypatch.setattr(inventory, "profile_remote", fake_profile_remote)
    devices = [DeviceEntry(f"pi-{i}", f"127.0.0.1:{2200 + i}") for i in range(3)]
    results = profile_fleet(devices, tmp_path, str(tmp_path / "h.db"), flags=AgentFlags(), install=True,
                            ssh_config=str(tmp_path / "none"))  # fmt: skip
    assert len(builds) == 1 and [r["ok"] for r in results] == [True] * 3
    assert {r["wheel"] for r in results} == {str(builds[0])}


def test_merge_scope_is_the_sent_files_and_the_drift_reference(tmp_path: Path) -> None:
    import json
    import shutil

    from device_agent.models import sha256_file
    from device_agent.reference import reference_panel
    from hwnas.remote.profile import merge_scope, merged_text

    fixtures = Path(__file__).resolve().parent / "fixtures" / "onnx"
    files = [Path(shutil.copyfile(fixtures / n, tmp_path / n)) for n in ("conv_relu.onnx", "matmul.onnx")]
    shutil.copyfile(fixtures / "slow_chain.onnx", tmp_path / "not_sent.onnx")
    (tmp_path / "manifest.jsonl").write_text(json.dumps({"file": "conv_relu.onnx", "space": "nb201", "arch": "a"}) + "\n")
    scope = merge_scope([*files, tmp_path / "manifest.jsonl"], "abcd" * 4)
    assert scope.device_ids == {"abcd" * 4}
    assert set(scope.models) == {sha256_file(f) for f in files} | {m.sha256 for m in reference_panel()}
    sent = scope.models[sha256_file(files[0])]
    assert (sent.space, sent.arch) == ("nb201", "a")  # from the host's manifest, not the device's rows
    assert merged_text({"measurements": 3, "reference_measurements": 1, "ignored_measurements": 4}) == (
        "2 new measurement(s) (+1 of the drift reference); ignored 4 rows for other devices/models")
