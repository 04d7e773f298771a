"""bench/vlm.py's code path at toy sizes (``--smoke``, the tiny random base, CPU): the training row, the query rows
and ``--vision-layouts`` run and write their JSON. The GPU run uses the same functions (``--device cuda``: bf16
weights, CUDA synchronisation and peak-memory counters, which only a GPU can check)."""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_vlm", REPO / "bench" / "vlm.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_rows_and_the_layout_comparison_run_and_write_json(tmp_path, capsys):
    bench = _bench()
    assert bench.main(["--arch", "tiny", "--device", "cpu", "--smoke", "--out", str(tmp_path / "rows.json")]) == 0
    rows = json.loads((tmp_path / "rows.json").read_text())
    assert rows["arch"] == "tiny" and rows["tokens_per_frame"] == 12 and rows["command"].endswith("rows.json")
    assert rows["train"]["step_s"] > 0 and rows["train"]["memory_kind"] == "process RSS"
    assert set(rows["query"]) == {"2"} and set(rows["query"]["2"]) == {"cold", "frames_warm", "warm"}
    assert all(row["p50_ms"] > 0 for row in rows["query"]["2"].values())

    args = ["--arch", "tiny", "--device", "cpu", "--smoke", "--vision-layouts", "--out", str(tmp_path / "layouts.json")]
    assert bench.main(args) == 0
    layouts = json.loads((tmp_path / "layouts.json").read_text())["vision_layouts"]["2"]
    assert layouts["images"]["tokens_per_keyframe"] == 12 and layouts["video"]["tokens_per_keyframe"] == 6
    assert "written to" in capsys.readouterr().out
