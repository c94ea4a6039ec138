"""Merging one latency database into another: union of models, devices and measurements, or, with
a :class:`MergeScope`, only the rows one profiling run asked for."""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass

from latency_db import tables
from latency_db.records import REFERENCE_SPACE, ModelRecord


@dataclass(frozen=True)
class MergeScope:
    """What a merge from an untrusted source (a device's database) may bring in.

    Only measurements taken on one of ``device_ids`` of a model in ``models`` are copied; every other
    measurement of the source is left out and counted (``ignored_measurements``). Models are stored
    from ``models`` (the records the caller built from the files it sent), never from the source's
    model rows, so a device cannot change a model's metadata; devices are copied only for
    ``device_ids``.

    Attributes:
        device_ids: ids of the devices whose rows are wanted.
        models: sha256 -> trusted record, for every model whose rows are wanted (the drift
            reference included, when its rows are wanted).
    """

    device_ids: frozenset[str]
    models: Mapping[str, ModelRecord]


def merge_connections(target: sqlite3.Connection, source: sqlite3.Connection,
                      scope: MergeScope | None = None) -> dict[str, int]:
    """Copy ``source``'s rows into ``target``; only reads ``source``.

    Models are matched by sha256 (unhashed ones by space and arch) and only their NULL columns
    filled; devices are matched by id and kept as stored; measurements are matched by uid and
    copied unchanged (same uid, source and created_at), so merging twice, or merging A into B and
    B into A, converges to the same set of measurements. With ``scope``, only the rows it names
    are copied (see :class:`MergeScope`).

    Args:
        target: connection inside a write transaction (``BEGIN IMMEDIATE``).
        source: connection with ``row_factory = sqlite3.Row`` at the current schema version.
        scope: None for everything, else the devices and models wanted.

    Returns:
        ``{"models", "models_updated", "devices", "measurements", "measurements_skipped",
        "reference_measurements", "ignored_measurements"}``: rows added to ``target`` (or completed,
        or already present, as named); ``reference_measurements`` counts the rows of the agent's
        drift reference among the added ``measurements``; ``ignored_measurements`` the source's
        rows outside ``scope``.
    """
    counts = dict.fromkeys(("models", "models_updated", "devices", "measurements", "measurements_skipped",
                            "reference_measurements", "ignored_measurements"), 0)  # fmt: skip
    rows = list(tables.select_measurements(source))
    if scope is None:
        models = [tables.model_from_row(row) for row in source.execute("SELECT * FROM models ORDER BY id")]
        devices = [tables.device_from_row(row) for row in source.execute("SELECT * FROM devices ORDER BY rowid")]
    else:
        wanted = [r for r in rows if r["device_id"] in scope.device_ids and r["model_sha256"] in scope.models]
        counts["ignored_measurements"] = len(rows) - len(wanted)
        rows = wanted
        shas = {r["model_sha256"] for r in rows}
        models = [m for sha, m in scope.models.items() if sha in shas]
        devices = [tables.device_from_row(row) for row in source.execute("SELECT * FROM devices ORDER BY rowid")
                   if row["device_id"] in scope.device_ids]  # fmt: skip
    for model in models:
        outcome = tables.upsert_model(target, model)
        if outcome != "unchanged":
            counts["models" if outcome == "added" else "models_updated"] += 1
    for device in devices:
        counts["devices"] += tables.insert_device(target, device)
    model_ids: dict[tables.ModelKey, int] = {}
    for row in rows:
        record = tables.measurement_from_row(row)
        if scope is not None:  # found by sha256 alone: the source's space/arch are not trusted
            record = dataclasses.replace(record, space=None, arch=None)
        added = tables.insert_measurement(target, record, model_ids)
        counts["measurements" if added else "measurements_skipped"] += 1
        space = row["space"] if scope is None else scope.models[row["model_sha256"]].space
        counts["reference_measurements"] += bool(added and space == REFERENCE_SPACE)
    return counts
