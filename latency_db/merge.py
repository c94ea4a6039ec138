"""Merging one latency database into another: union of models, devices and measurements."""

from __future__ import annotations

import sqlite3

from latency_db import tables
from latency_db.records import REFERENCE_SPACE


def merge_connections(target: sqlite3.Connection, source: sqlite3.Connection) -> dict[str, int]:
    """Copy ``source``'s rows into ``target``; only reads ``source``.

    Models are matched by sha256 (unhashed ones by space and arch) and only their NULL columns
    filled; devices are matched by id and kept as stored; measurements are matched by uid and
    copied unchanged (same uid, source and created_at), so merging twice, or merging A into B and
    B into A, converges to the same set of measurements.

    Args:
        target: connection inside a write transaction (``BEGIN IMMEDIATE``).
        source: connection with ``row_factory = sqlite3.Row`` at the current schema version.

    Returns:
        ``{"models", "models_updated", "devices", "measurements", "measurements_skipped",
        "reference_measurements"}``: rows added to ``target`` (or completed, or already present, as
        named); ``reference_measurements`` counts the rows of the agent's drift reference among
        the added ``measurements``.
    """
    counts = dict.fromkeys(
        ("models", "models_updated", "devices", "measurements", "measurements_skipped", "reference_measurements"), 0)
    for row in source.execute("SELECT * FROM models ORDER BY id"):
        outcome = tables.upsert_model(target, tables.model_from_row(row))
        if outcome != "unchanged":
            counts["models" if outcome == "added" else "models_updated"] += 1
    for row in source.execute("SELECT * FROM devices ORDER BY rowid"):
        counts["devices"] += tables.insert_device(target, tables.device_from_row(row))
    model_ids: dict[tables.ModelKey, int] = {}
    for row in tables.select_measurements(source):
        added = tables.insert_measurement(target, tables.measurement_from_row(row), model_ids)
        counts["measurements" if added else "measurements_skipped"] += 1
        counts["reference_measurements"] += bool(added and row["space"] == REFERENCE_SPACE)
    return counts
