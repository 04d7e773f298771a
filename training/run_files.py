"""Files of a run directory, written so a crash never leaves half a file behind.

Every file goes to a hidden temporary name in the same directory and is renamed over the
target (``os.replace`` is atomic on one filesystem). The metric logs are small (one row per
logged step), so they are rewritten whole each time: that also lets ``--resume`` drop rows
that a crashed run logged after its last saved state.
"""
from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Mapping


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success rename it to ``path``, on error remove it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        elif tmp.exists():
            tmp.unlink()


def write_text_atomic(path: Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_json_atomic(path: Path, data: Any) -> Path:
    return write_text_atomic(path, json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")


def replace_directory(staged: Path, target: Path) -> Path:
    """Put the fully written directory ``staged`` at ``target``, replacing an older one.

    Two renames: target -> ``<target>.previous``, staged -> target. A crash between them
    leaves ``<target>.previous`` complete, which ``resolve_directory`` finds.
    """
    staged, target = Path(staged), Path(target)
    previous = target.with_name(target.name + ".previous")
    if previous.exists():
        shutil.rmtree(previous)
    if target.exists():
        os.replace(target, previous)
    os.replace(staged, target)
    if previous.exists():
        shutil.rmtree(previous)
    return target


def resolve_directory(target: Path) -> Path | None:
    """``target`` if it exists, else the ``.previous`` copy a crash in ``replace_directory`` left, else None."""
    target = Path(target)
    previous = target.with_name(target.name + ".previous")
    if target.is_dir():
        return target
    if previous.is_dir():
        return previous
    return None


def _json_default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _finite_or_none(value: Any) -> Any:
    """JSON has no NaN: write null for a value that was not measured."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsLog:
    """Rows of metrics kept as ``<name>.csv`` and ``<name>.jsonl`` in the run directory."""

    def __init__(self, run_dir: Path, name: str) -> None:
        self.csv_path = Path(run_dir) / f"{name}.csv"
        self.jsonl_path = Path(run_dir) / f"{name}.jsonl"
        self.rows: list[dict[str, Any]] = []

    def load(self, up_to_step: int) -> None:
        """Read the rows back (on resume), keeping only those with ``step <= up_to_step``."""
        self.rows = []
        if self.jsonl_path.exists():
            for line in self.jsonl_path.read_text(encoding="utf-8").splitlines():
                row = json.loads(line)
                if row["step"] <= up_to_step:
                    self.rows.append({k: (float("nan") if v is None else v) for k, v in row.items()})
        self._write()

    def append(self, row: Mapping[str, Any]) -> None:
        self.rows.append(dict(row))
        self._write()

    def _write(self) -> None:
        columns: list[str] = []
        for row in self.rows:
            columns.extend(k for k in row if k not in columns)
        buffer = io.StringIO()
        writer = csv.DictWriter(buffer, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        write_text_atomic(self.csv_path, buffer.getvalue())
        lines = [
            json.dumps({k: _finite_or_none(v) for k, v in row.items()}, default=_json_default) for row in self.rows
        ]
        write_text_atomic(self.jsonl_path, "".join(line + "\n" for line in lines))
