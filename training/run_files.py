"""Files of a run directory, written so a crash never leaves half a file behind.

Every file goes to a hidden temporary name in the same directory and is renamed over the
target (``os.replace`` is atomic on one filesystem). The metric logs are small (one row per
logged step), so they are rewritten whole each time: that also lets ``--resume`` drop rows
that a crashed run logged after its last saved state.

Every rename of a run directory goes through :func:`_rename`, so that a test can stop the
process at each one (``RENAME_HOOK``) and check that the directory it leaves can be resumed or
started afresh: a kill during the step-0 save once left a run that neither could (issue 16,
finding 7). :func:`tidy_run_directory` clears what a killed save leaves behind.
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
from typing import Any, Callable, Iterator, Mapping

# Called with (source, target) before every rename of run files; None in normal use. Tests kill the process here.
RENAME_HOOK: Callable[[Path, Path], None] | None = None


def _rename(source: Path, target: Path) -> None:
    if RENAME_HOOK is not None:
        RENAME_HOOK(Path(source), Path(target))
    os.replace(source, target)


@contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary sibling of ``path``; on success rename it to ``path``, on error remove it."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.partial")
    try:
        yield tmp
        _rename(tmp, path)
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
    leaves ``<target>.previous`` complete, which ``resolve_directory`` finds. A complete copy
    exists at every instant: ``.previous`` is deleted only while ``target`` is complete.
    """
    staged, target = Path(staged), Path(target)
    previous = target.with_name(target.name + ".previous")
    if target.exists():
        if previous.exists():  # stale: target is the newer complete copy
            shutil.rmtree(previous)
        _rename(target, previous)
    _rename(staged, target)
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


def tidy_run_directory(run_dir: Path) -> None:
    """Repair what a killed save leaves in ``run_dir``: a ``<name>.previous`` whose ``<name>`` is missing is
    renamed back (a stale one beside a complete ``<name>`` is removed), and hidden staging files and
    directories (``.<name>.partial``, ``.<name>.<random>.tmp``/``.old``) are removed."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        return
    for path in sorted(run_dir.iterdir()):
        if path.name.endswith(".previous") and path.is_dir():
            target = path.with_name(path.name[: -len(".previous")])
            if target.is_dir():
                shutil.rmtree(path)
            else:
                _rename(path, target)
        elif path.name.startswith(".") and path.name.endswith((".partial", ".tmp", ".old")):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


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
