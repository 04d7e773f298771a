"""Peak memory of ``w2r2-demo --bag`` for bags of different lengths: streaming keeps it flat.

For each length, a synthetic room is recorded and written as a robot-like bag
(/tf, /tf_static, Odometry, raw rgb8 colour, 16UC1 depth), then ``w2r2-demo --bag``
runs on it in a process of its own and reports its peak RSS (the demo prints
``peak RSS N MB``, from ``getrusage``). A demo that loaded the whole bag would
grow by at least the bag's size from one row to the next.

    .venv/bin/python bench/demo_memory.py --frames 40 320 --out bench/results/demo_memory.json
"""
from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from w2r2_ros.geometry.camera import Intrinsics
from w2r2_ros.sim.bag_writer import BagWriteConfig, write_bag
from w2r2_ros.sim.recording import record_scene
from w2r2_ros.sim.world import generate_scene


def bag_megabytes(bag: Path) -> float:
    return sum(f.stat().st_size for f in bag.rglob("*") if f.is_file()) / 2**20


def run_demo(bag: Path, out: Path, rate: float) -> dict[str, object]:
    demo = Path(sys.executable).parent / "w2r2-demo"
    started = time.monotonic()
    run = subprocess.run([str(demo), "--bag", str(bag), "--out", str(out), "--rate", str(rate), "--query", "the chair"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise SystemExit(f"w2r2-demo failed on {bag} (exit {run.returncode}): {run.stderr.strip().splitlines()[-1:]}")
    peak = re.search(r"^peak RSS (\d+) MB$", run.stdout, re.MULTILINE)
    received = re.search(r"^scene memory received: (.*)$", run.stdout, re.MULTILINE)
    return {"peak_rss_mb": int(peak.group(1)), "received": received.group(1), "seconds": round(time.monotonic() - started, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[40, 320], help="bag lengths in frames (5 fps)")
    parser.add_argument("--rate", type=float, default=4.0, help="playback speed factor")
    parser.add_argument("--out", type=Path, default=Path("bench/results/demo_memory.json"))
    args = parser.parse_args()
    intrinsics = Intrinsics.from_fov(320, 240, 70.0)
    rows = []
    with tempfile.TemporaryDirectory(prefix="w2r2-demo-memory-") as scratch:
        for frames in args.frames:
            recording = record_scene(generate_scene("demo-memory", 0), n_frames=frames, intrinsics=intrinsics)
            bag = write_bag(recording, Path(scratch) / f"bag_{frames}", config=BagWriteConfig(pose=False))
            del recording
            row = {"frames": frames, "bag_mb": round(bag_megabytes(bag), 1), **run_demo(bag, Path(scratch) / f"out_{frames}", args.rate)}
            rows.append(row)
            print(f"{row['frames']:>6} frames  bag {row['bag_mb']:>7.1f} MB  peak RSS {row['peak_rss_mb']:>5} MB  "
                  f"({row['seconds']} s; received {row['received']})", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
