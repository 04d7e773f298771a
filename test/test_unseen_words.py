"""Words the training data never used ground like the trained class word (issue 15), with the shipped model.

The shipped model was trained on the scannet world's train scenes with the training phraser, which never says
"couch", "cupboard", "screen", ... (``heldout_descriptions.UNSEEN_CLASS_WORDS``). On the first test scenes
(never seen in training) every description naming its class by a trained word of that set is asked twice:
as written and with the unseen synonym.

The issue asks for 10 points, and that is the bound here. The shipped model answers with the class the text names
drawn onto the category names (``ModelConfig.snap_names``): on the whole test split it is 9.7 points short of the
trained word at Acc@0.25 (56.1 against 46.4, 1093 descriptions; ``python -m w2r2_training.unseen_words --checkpoint
w2r2_ros/models/default --data data/scannet4 --split test``, data as built on 2026-12-02 15:23 UTC), 16.6 without
it (55.4 against 38.8); on these 8 scenes 5.4 (57.6 against 52.2), 18.5 without. With the proposals of 2026-12-03
both sides rose and the gap widened past the bound (10.6 on the whole split, 14.1 here). The eighth model (relation
ranks, shipped 2026-12-05) is within it again: 64.8 against 55.1 on the whole test split of that day's build
(9.7 points; ``--data data/s18full``, JSON ``bench/results/issue15_r9/unseen_words_shipped.json``), 68.5 against
59.8 on these 8 scenes (8.7 points, 92 pairs).
The word-level model before the pretrained text encoder lost 34-53 (every unseen word was [UNK]).
"""
import json
from pathlib import Path

import pytest

from w2r2_training.synthetic_dataset import SyntheticDatasetConfig, build_synthetic_dataset
from w2r2_training.never_trained import NEVER_TRAINED, answered_rates
from w2r2_training.never_trained import main as main_never_trained
from w2r2_training.unseen_words import main, unseen_word_accuracy

DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "w2r2_ros" / "models" / "default"
# The shipped recipe's scene numbering (300 train, 50 val), so these are its first 8 test scenes.
TEST_SCENES = SyntheticDatasetConfig(n_train=300, n_val=50, n_test=8, splits=("test",), catalogue="scannet",
                                     phrasing="human", workers=1)


@pytest.fixture(scope="module")
def test_scenes(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("unseen") / "data"
    build_synthetic_dataset(root, TEST_SCENES, progress=False)
    return root


@pytest.mark.slow
def test_unseen_class_words_ground_like_the_trained_word(test_scenes):
    result = unseen_word_accuracy(DEFAULT_MODEL, test_scenes, "test")
    assert result["pairs"] >= 20, result
    trained, unseen = result["trained"]["acc@0.25"], result["unseen"]["acc@0.25"]
    assert trained >= 0.3, f"the shipped model finds only {trained:.2f} of these targets with the trained words"
    assert trained - unseen <= 0.10, f"trained word {trained:.3f}, unseen synonym {unseen:.3f} ({result['pairs']} pairs)"


@pytest.mark.slow
def test_any_synonym_set_can_be_asked_and_a_bad_one_is_one_line(test_scenes, tmp_path, capsys):
    """``--words FILE``: the pairs are those of the file's classes; a file that is not {class: word} exits 2 with
    one line naming it."""
    words = tmp_path / "words.json"
    words.write_text(json.dumps({"sofa": "loveseat", "chair": "seat"}))
    out = tmp_path / "result.json"
    assert main(["--checkpoint", str(DEFAULT_MODEL), "--data", str(test_scenes), "--words", str(words),
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert set(result["per_class"]) == {"sofa", "chair"} and result["pairs"] == sum(result["per_class"].values()) > 0
    capsys.readouterr()
    for bad in ("[1, 2]", '{"sofa": ""}', "{not json"):
        words.write_text(bad)
        assert main(["--checkpoint", str(DEFAULT_MODEL), "--data", str(test_scenes), "--words", str(words)]) == 2
        error = capsys.readouterr().err.strip().splitlines()
        assert len(error) == 1 and "--words" in error[0] and str(words) in error[0], error


@pytest.mark.slow
def test_never_trained_names_are_mostly_not_answered(test_scenes, capsys):
    """Names of no trained class get NOT_FOUND in most scenes (the shipped model on the whole test split's first 30
    scenes: 28.0 % answered, 20.7 % without snap_names; on these 8: 28.7 and 20.0; docs/TRAINING.md); a trained name is
    refused in one line."""
    result = answered_rates(DEFAULT_MODEL, test_scenes, "test", scenes=8)
    assert result["scenes"] == 8 and set(result["answered"]) == set(NEVER_TRAINED)
    assert result["mean"] <= 0.35, result
    assert main_never_trained(["--checkpoint", str(DEFAULT_MODEL), "--data", str(test_scenes), "--names", "chair"]) == 2
    assert "categories of this checkpoint" in capsys.readouterr().err
