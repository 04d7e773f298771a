"""The seed study (training/seed_study.py): real w2r2-train and w2r2-eval subprocesses on the tiny recipe."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

from w2r2_training.seed_study import EvalSet, format_summary, main, summarise
from w2r2_training.trainer import run_finished
from w2r2_training.trainer_state import saved_step

TINY = Path(__file__).resolve().parents[1] / "configs" / "train_tiny.yaml"


def test_two_seeds_are_trained_evaluated_summarised_and_not_redone(tmp_path, capsys):
    data, out = tmp_path / "data", tmp_path / "study"
    argv = ["--config", str(TINY), "--data", str(data), "--out", str(out), "--seeds", "0", "1", "--losses", "w2r2",
            "--eval", f"test={data}:test", "--parallel", "2", "steps=2", "eval_every=2"]
    assert main(argv) == 0
    study = json.loads((out / "study.json").read_text())
    cell = study["summary"]["test"]["w2r2"]["overall"]["acc@0.5"]
    assert len(cell["values"]) == 2 and all(0.0 <= v <= 1.0 for v in cell["values"])
    assert cell["mean"] == pytest.approx(sum(cell["values"]) / 2)
    for seed in (0, 1):
        config = (out / f"w2r2_s{seed}" / "config.yaml").read_text()
        assert f"seed: {seed}" in config and "steps: 2" in config
    # Rerunning finds every run and evaluation done: nothing is trained again.
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("w2r2_s*/best/*")}
    assert main(argv) == 0
    assert stamps == {p: p.stat().st_mtime_ns for p in out.glob("w2r2_s*/best/*")}
    assert "test" in capsys.readouterr().out


def test_an_interrupted_run_is_resumed_to_its_steps_and_evaluated_again(tmp_path, capsys):
    """``best/`` is written at the first validation, so it is no sign that a run finished: a run stopped after
    it is resumed to its configured steps, and an evaluation made from its unfinished ``best/`` is redone."""
    data, out = tmp_path / "data", tmp_path / "study"
    run_dir = out / "w2r2_s0"
    overrides = ["steps=4", "eval_every=2"]
    # The run as the study starts it, stopped (resumably) after its first validation.
    train = Path(sys.executable).with_name("w2r2-train")
    subprocess.run([str(train), "--config", str(TINY), "--loss", "w2r2", "--seed", "0", "--data", str(data),
                    "--out", str(run_dir), "--no-progress", *overrides, "num_threads=1", "--stop-at-step", "2"],
                   check=True, capture_output=True)
    assert (run_dir / "best").is_dir() and saved_step(run_dir / "last") == 2 and not run_finished(run_dir)
    stale = run_dir / "eval" / "test.json"
    stale.parent.mkdir()
    stale.write_text(json.dumps({"made from": "the step-2 best/"}))
    argv = ["--config", str(TINY), "--data", str(data), "--out", str(out), "--seeds", "0", "--losses", "w2r2",
            "--eval", f"test={data}:test", "--parallel", "1", *overrides]
    assert main(argv) == 0
    assert "resuming the unfinished run" in capsys.readouterr().out
    assert saved_step(run_dir / "last") == 4 and run_finished(run_dir)
    assert "splits" in json.loads(stale.read_text())
    assert len(json.loads((out / "study.json").read_text())["runs"]["w2r2"]["0"]["test"]["normal"]) > 0


def test_summary_spread_and_table():
    runs = {"w2r2": {s: {"t": {"normal": {c: {"acc@0.25": v, "acc@0.5": v / 2} for c in ("overall", "unique", "multiple")}}}
                     for s, v in enumerate((0.6, 0.8))}}
    summary = summarise(runs, [EvalSet("t", Path("d"), "test")])
    cell = summary["t"]["w2r2"]["multiple"]["acc@0.25"]
    assert cell["mean"] == pytest.approx(0.7) and cell["sd"] == pytest.approx(0.1414, abs=1e-3)
    assert "70.0 ± 14.1" in format_summary(summary)


def test_bad_eval_argument_is_refused():
    with pytest.raises(SystemExit):
        main(["--config", str(TINY), "--data", "d", "--out", "o", "--eval", "no-colon"])


def test_eval_sets_parse_with_an_optional_sample_limit():
    assert EvalSet.parse("held=data/x:test_heldout@1500") == EvalSet("held", Path("data/x"), "test_heldout", 1500)
    assert EvalSet.parse("t=d:test") == EvalSet("t", Path("d"), "test", 0)
    for bad in ("t=d:test@", "t=d:test@x", "t=d", "=d:test"):
        with pytest.raises(Exception, match="NAME=DATA:SPLIT"):
            EvalSet.parse(bad)
