"""Issue 16 findings 7-9 on the training side, with real tiny runs of ``w2r2-train``.

- A run killed at any rename of its run directory (``run_files.RENAME_HOOK`` ends a child
  interpreter there with ``os._exit``, which like SIGKILL runs no cleanup: ``train_in_child.py``) is finished by ``--resume``
  or a fresh start, with the same weights and losses as an uninterrupted run.
- Split names and scene ids cannot write outside the dataset directory.
- Every failure a user can cause ends in one line and exit 2 (their input) or 1 (the
  environment: a full or read-only filesystem, made real with small tmpfs mounts when root).
"""
import json
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import w2r2_training.run_files as run_files
from test_train_cli import TINY, read_csv
from w2r2_training.eval_cli import main as eval_main
from w2r2_training.train_cli import main

pytestmark = pytest.mark.slow

CHILD = Path(__file__).with_name("train_in_child.py")
SHORT = ["steps=1", "eval_every=1"]  # state saves at step 0 and 1, validation and best/ at step 1


def one_error_line(capsys) -> str:
    """The one error line of a failed command (progress lines may precede it; no traceback may)."""
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("w2r2-train: error: ")]
    assert len(errors) == 1 and "Traceback" not in err, err
    return errors[0]


def in_child(args: list[str], kill_at: int | None = None, record: Path | None = None) -> int:
    """``w2r2-train args`` in a child interpreter (``train_in_child.py``); ``kill_at``: end it at that
    rename (1-based); ``record``: list the renames there."""
    child = [sys.executable, str(CHILD), str(kill_at or 0), str(record) if record else "-", "--", *args]
    return subprocess.run(child, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data") / "tiny"
    assert in_child(["--config", str(TINY), "--data", str(root), "--build-data", "--no-progress"]) == 0
    return root


@pytest.fixture(scope="module")
def reference(tiny_data, tmp_path_factory) -> tuple[Path, list]:
    run = tmp_path_factory.mktemp("runs") / "reference"
    record = run.parent / "renames.json"
    assert in_child(["--config", str(TINY), "--data", str(tiny_data), "--out", str(run), "--no-progress", *SHORT],
                    record=record) == 0
    return run, json.loads(record.read_text())


def test_a_run_killed_at_any_rename_is_finished_by_resume_or_a_fresh_start(reference, tiny_data, tmp_path):
    run_ref, renames = reference
    targets = {target for _, target in renames}
    assert {"config.yaml", "last", "best", "train_metrics.csv", "val_metrics.jsonl"} <= targets, renames
    expected = load_file(str(run_ref / "last" / "model.safetensors"))
    assert len(renames) == len({tuple(r) for r in renames}) + 1  # each kind once; .last.partial -> last twice
    losses = lambda path: [{k: v for k, v in r.items() if k.startswith("loss/")} for r in read_csv(path)]  # noqa: E731
    for kill_at in range(1, len(renames) + 1):
        run = tmp_path / f"killed-{kill_at}"
        fresh = ["--config", str(TINY), "--data", str(tiny_data), "--out", str(run), "--no-progress", *SHORT]
        assert in_child(fresh, kill_at=kill_at) == 137
        how = "resume"
        if in_child(["--data", str(tiny_data), "--out", str(run), "--no-progress", "--resume"]) != 0:
            how = "fresh start"
            assert in_child(fresh) == 0, f"killed at rename {kill_at} {renames[kill_at - 1]}: neither resumes nor restarts"
        where = f"killed at rename {kill_at} ({renames[kill_at - 1]}), finished by {how}"
        weights = load_file(str(run / "last" / "model.safetensors"))
        assert all(torch.equal(weights[k], expected[k]) for k in expected), where
        assert losses(run / "train_metrics.csv") == losses(run_ref / "train_metrics.csv"), where
        assert (run / "best" / "model.safetensors").is_file(), where
        assert not [p.name for p in run.iterdir() if p.name.startswith(".") or p.name.endswith(".previous")], where


def test_split_names_and_ids_cannot_leave_the_dataset_directory(tmp_path, capsys):
    """Finding 8: a split "../escaped" wrote escaped.jsonl next to the dataset, rc 0."""
    for split in ("../escaped", "a/b", "/tmp/absolute", ".."):
        annotations = tmp_path / "annotations.json"
        annotations.write_text(json.dumps([{
            "scene_id": "lab_0", "bag": "bags/lab_0", "split": split,
            "objects": [{"object_id": 1, "object_name": "chair", "box": [0, 0, 0, 1, 1, 1]}],
            "descriptions": [{"object_id": 1, "ann_id": 0, "description": "the chair"}],
        }]))
        data = tmp_path / "data" / "lab"
        code = main(["--data", str(data), "--build-data", "--bag-annotations", str(annotations), "--no-progress"])
        assert code == 2, split
        assert "not a plain name" in one_error_line(capsys)
        assert not (tmp_path / "escaped.jsonl").exists() and not (tmp_path / "data").exists()
    assert main(["--data", str(tmp_path / "d"), "--build-data", "--scanrefer", "a/b=x.json", "--scannet", str(tmp_path)]) == 2
    assert "not a plain name" in one_error_line(capsys)


def test_user_errors_are_one_line_and_exit_2(tiny_data, tmp_path, capsys):
    assert main(["--config", str(TINY), "--data", str(tiny_data), "--out", str(tmp_path / "r"), "optim.lr=nan"]) == 2
    assert "'optim.lr' must be a finite number" in one_error_line(capsys)
    assert main(["--data", str(tmp_path / "d"), "--build-data", "--bag-annotations", str(tmp_path)]) == 2
    assert "is a directory" in one_error_line(capsys)
    run = ["--config", str(TINY), "--data", str(tiny_data), "--out", str(tmp_path / "r2"), "--no-progress"]
    assert main([*run, "data.train_split=a/b"]) == 2
    assert "'a/b'" in one_error_line(capsys)


def test_a_checkpoint_with_nan_weights_is_refused_by_w2r2_eval(reference, tiny_data, tmp_path, capsys):
    broken = tmp_path / "nan"
    shutil.copytree(reference[0] / "best", broken)
    state = load_file(str(broken / "model.safetensors"))
    name = sorted(state)[-1]
    state[name].view(-1)[0] = float("nan")
    save_file(state, str(broken / "model.safetensors"))
    assert eval_main(["--checkpoint", str(broken), "--data", str(tiny_data), "--split", "val"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "non-finite weight" in err[0], err


@contextmanager
def tmpfs(path: Path, size: str, read_only: bool = False):
    """A real small filesystem at ``path`` (needs root and mount rights; the test is skipped otherwise)."""
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)], capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({mounted.stderr.strip() or 'mount failed'}): needs root with mount rights")
    try:
        yield path
    finally:
        subprocess.run(["umount", str(path)], check=True)


def test_a_full_or_read_only_disk_is_one_line_and_exit_1(reference, tiny_data, tmp_path, capsys):
    with tmpfs(tmp_path / "full", "64k") as full:
        assert main(["--config", str(TINY), "--data", str(full / "tiny"), "--build-data", "--no-progress"]) == 1
        line = one_error_line(capsys)
        assert "No space left on device" in line and "disk is full" in line
        code = main(["--config", str(TINY), "--data", str(tiny_data), "--out", str(full / "run"), "--no-progress"])
        assert code == 1
        assert "No space left on device" in one_error_line(capsys)
    with tmpfs(tmp_path / "ro", "1m", read_only=True) as read_only:
        assert main(["--config", str(TINY), "--data", str(read_only / "tiny"), "--build-data", "--no-progress"]) == 1
        assert "Read-only file system" in one_error_line(capsys)
        out = read_only / "eval.json"
        assert eval_main(["--checkpoint", str(reference[0] / "best"), "--data", str(tiny_data), "--split", "val",
                          "--out", str(out)]) == 1
        errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("w2r2-eval: error: ")]
        assert len(errors) == 1 and "Read-only file system" in errors[0]
    with tmpfs(tmp_path / "full2", "64k") as full:  # --debug shows the traceback instead
        with pytest.raises(OSError):
            main(["--config", str(TINY), "--data", str(full / "tiny"), "--build-data", "--no-progress", "--debug"])
