"""The suite's policy for a missing service or optional package (tests/conftest.py ``require``): a
skip with its install hint on a workstation, a failure under ``CI=true``, so a green CI run never
hides a whole untested feature."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require_module, sshd_or_require

ROOT = Path(__file__).resolve().parent.parent


def test_missing_sshd_fails_under_ci_and_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HWNAS_TEST_SSHD", "/nonexistent/sshd")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"CI=true and sshd is missing \(no /nonexistent/sshd\); install it: make services"):
        sshd_or_require()
    monkeypatch.delenv("CI")
    with pytest.raises(pytest.skip.Exception, match=r"sshd is missing .*install it: make services"):
        sshd_or_require()


def test_missing_package_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=r"ray is missing .*pip install 'hwnas\[ray\]'"):
        require_module("ray")


def test_a_gated_ssh_test_fails_the_run_under_ci_without_sshd(tmp_path: Path) -> None:
    """End to end: pytest on an SSH test with the sshd lookup pointed at a missing path exits 1 under
    CI=true (the failure names the install hint) and 0 (skipped) without it."""
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfs",
            "tests/test_profile_ssh.py::test_quoted_arguments_run_nothing_extra"]  # fmt: skip
    env = {**os.environ, "HWNAS_TEST_SSHD": str(tmp_path / "no-sshd")}
    ci = subprocess.run(argv, cwd=ROOT, env={**env, "CI": "true"}, capture_output=True, text=True, timeout=120)
    assert ci.returncode == 1 and "sshd is missing" in ci.stdout and "make services" in ci.stdout, ci.stdout[-2000:]
    local = subprocess.run(argv, cwd=ROOT, env={k: v for k, v in env.items() if k != "CI"}, capture_output=True,
                           text=True, timeout=120)  # fmt: skip
    assert local.returncode == 0 and "1 skipped" in local.stdout, local.stdout[-2000:]
