"""Accelerator design space and analytical cost model for hardware/model codesign (numpy only).

Reserved package: the accelerator spec, layer extraction and cost model arrive with the codesign
work; nothing is exported yet.
"""
