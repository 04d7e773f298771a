"""``w2r2-train`` in a fresh interpreter that may end itself at the Nth rename of its run directory.

A subprocess, not ``os.fork()``: forking the test process after rclpy's DDS threads and torch's
thread pools have started can leave the child with a lock held by a thread that no longer exists
(seen as a segfault in the full suite). ``os._exit`` at the rename runs no cleanup, like SIGKILL.

Usage: python train_in_child.py KILL_AT RECORD_PATH -- w2r2-train arguments...
(KILL_AT 0: never; RECORD_PATH "-": do not record the renames.)
"""
import json
import os
import sys
from pathlib import Path

import w2r2_training.run_files as run_files
from w2r2_training.train_cli import main


def run(kill_at: int, record: Path | None, args: list[str]) -> int:
    renames: list[list[str]] = []

    def hook(source: Path, target: Path) -> None:
        renames.append([source.name, target.name])
        if record is not None:
            record.write_text(json.dumps(renames))
        if len(renames) == kill_at:
            os._exit(137)

    run_files.RENAME_HOOK = hook
    return main(args)


if __name__ == "__main__":
    kill_at, record, separator, *rest = sys.argv[1:]
    assert separator == "--", sys.argv
    sys.exit(run(int(kill_at), None if record == "-" else Path(record), rest))
