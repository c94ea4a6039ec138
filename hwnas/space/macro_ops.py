"""The macro space's fixed layers and its op names (a leaf module, shared by the space and its
torch network, which do not import each other for it)."""

from __future__ import annotations

STEM_CHANNELS = 32
FIRST_BLOCK_CHANNELS = 16
HEAD_CHANNELS = 1280


def parse_op(op: str) -> tuple[int, int] | None:
    """``"k5e3"`` -> (kernel 5, expansion 3); ``"skip"`` -> None."""
    if op == "skip":
        return None
    return int(op[1]), int(op[3])


__all__ = ["FIRST_BLOCK_CHANNELS", "HEAD_CHANNELS", "STEM_CHANNELS", "parse_op"]
