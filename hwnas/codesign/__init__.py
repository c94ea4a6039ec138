"""Hardware/model codesign: joint search over (network, accelerator) pairs.

:mod:`~hwnas.codesign.joint_space` (the joint :class:`JointSpace` and the hardware key),
:mod:`~hwnas.codesign.hw_eval` (analytical hardware metrics with a per-network layer cache, hard
budgets). The command is :mod:`hwnas.cli.codesign` (``hwnas codesign``).
"""

from __future__ import annotations

from hwnas.codesign.hw_eval import HW_METRICS, HardwareBudget, HardwareCost, parse_hw_budget
from hwnas.codesign.joint_space import (
    JointSpace,
    design_space_from_dict,
    hw_key,
    load_design_space,
    parse_hw_key,
    split_metrics,
)

__all__ = ["HW_METRICS", "HardwareBudget", "HardwareCost", "JointSpace", "design_space_from_dict", "hw_key",
           "load_design_space", "parse_hw_budget", "parse_hw_key", "split_metrics"]
