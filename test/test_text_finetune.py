"""The text encoder's top layers made ours (``ModelConfig.text_finetune_layers``): they continue the frozen encoder,
real training steps change them, the checkpoint carries them to the Grounder, and k = 0 is the frozen encoder."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from transformers import AutoModel, AutoTokenizer

from model_fixtures import proposals_from_boxes, rectangle_box, wall_keyframes
from w2r2_ros.model.build import new_model
from w2r2_ros.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounder import Grounder
from w2r2_ros.model.inputs import prepare_inputs
from w2r2_ros.model.pretrained_text import PretrainedText, TextModelError, text_model_dir
from w2r2_ros.model.text_top_layers import PretrainedTopLayers
from w2r2_training.train_cli import main

TINY = Path(__file__).resolve().parents[1] / "configs" / "train_tiny.yaml"
SHIPPED = Path(__file__).resolve().parents[1] / "w2r2_ros" / "models" / "default"
TEXTS = ["the couch nearest the door", "can you show me the second chair from the window?", "a"]
RECTS = [((220, 30, 30), -1.5, -0.7, 0.5, 1.3), ((30, 30, 220), -0.3, 0.5, 0.6, 1.4)]


def top_states(model, text, texts=TEXTS):
    states, mask = text.encode(texts, model.config.max_text_length)
    with torch.no_grad():
        return model.text_encoder.pretrained_layers(states, mask), mask


@pytest.mark.parametrize("k", [1, 2])
def test_the_models_top_layers_start_as_the_encoders_own_and_continue_its_frozen_states(k):
    torch.manual_seed(0)
    model, text = new_model(ModelConfig(categories=("chair", "sofa"), text_finetune_layers=k))
    assert text.state_layer == 6 - k
    assert sorted(model.text_encoder.pretrained_layers.layer) == [str(i) for i in range(6 - k, 6)]
    below, mask = text.encode(TEXTS, 64)
    continued, _ = top_states(model, text)
    last, last_mask = PretrainedText().encode(TEXTS, 64)
    assert torch.equal(mask, last_mask)
    # The cached states are those below the top layers (far from the last ones); our copy of the top layers turns
    # them into the encoder's last states (the cache's fp16 rounding apart).
    assert (below - last)[mask].abs().max() > 1.0
    assert (continued - last)[mask].abs().max() < 2e-2


def test_k0_is_the_frozen_encoder_bit_for_bit_with_its_cache_file_and_weights_unchanged(tmp_path):
    text = PretrainedText(finetune_layers=0)
    states, mask = text.encode(TEXTS, 64)
    directory = str(text_model_dir())
    tokenizer = AutoTokenizer.from_pretrained(directory, local_files_only=True)
    minilm = AutoModel.from_pretrained(directory, local_files_only=True).eval()
    batch = tokenizer(TEXTS, padding=True, truncation=True, max_length=64, return_tensors="pt")
    with torch.no_grad():
        expected = minilm(**batch).last_hidden_state.to(torch.float16).float()
    assert torch.equal(mask, batch["attention_mask"].bool()) and torch.equal(states, expected * mask[..., None])
    assert text.cache_file(tmp_path, 64).name == f".text_states_{text.identity['sha256'][:16]}_64.safetensors"
    assert PretrainedText(finetune_layers=1).cache_file(tmp_path, 64).name.endswith("_64_layer5.safetensors")
    model, _ = new_model(ModelConfig(categories=("chair",)))
    assert not any("pretrained_layers" in name for name in model.state_dict()) and not model.fine_tuned_pretrained()
    # A checkpoint written before the switch does not name it and loads as frozen (the shipped one, with the key
    # taken out of its config in a copy, should it have been written since).
    old = tmp_path / "old"
    shutil.copytree(SHIPPED, old)
    document = json.loads((old / "config.json").read_text())
    document["model"].pop("text_finetune_layers", None)
    (old / "config.json").write_text(json.dumps(document))
    shipped, shipped_text = load_checkpoint(old)
    assert shipped.config.text_finetune_layers == 0 and shipped_text.state_layer == shipped_text.layers


def test_more_layers_than_the_encoder_has_or_without_a_text_model_is_refused():
    with pytest.raises(TextModelError, match="0..6"):
        PretrainedText(finetune_layers=7)
    with pytest.raises(ValueError, match="0..6"):
        PretrainedTopLayers(7)
    with pytest.raises(ValueError, match="text_finetune_layers"):
        ModelConfig(text_model="", text_finetune_layers=1)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny recipe with MiniLM's top layer ours, a dozen real training steps."""
    root = tmp_path_factory.mktemp("finetune")
    run = root / "run"
    args = ["--config", str(TINY), "--data", str(root / "data"), "--out", str(run), "--no-progress"]
    assert main([*args, "steps=12", "eval_every=12", "model.text_finetune_layers=1"]) == 0
    return root, run / "last"


def test_training_changes_the_top_layer_and_the_checkpoint_carries_it_to_the_grounder(trained):
    root, checkpoint = trained
    model, text = load_checkpoint(checkpoint)
    assert model.config.text_finetune_layers == 1 and text.state_layer == 5
    with safe_open(str(checkpoint / "model.safetensors"), framework="pt") as weights:
        saved = {name for name in weights.keys() if name.startswith("text_encoder.pretrained_layers.")}
    assert saved == {f"text_encoder.pretrained_layers.{name}" for name in model.text_encoder.pretrained_layers.state_dict()}
    assert any(name.startswith("text_encoder.pretrained_layers.layer.5.") for name in saved)
    # The frozen states below were cached beside the data under their own name.
    assert (root / "data" / text.cache_file(Path("."), model.config.max_text_length).name).is_file()

    # The trained layer is not MiniLM's: the same frozen states come out different.
    fresh, _ = new_model(ModelConfig.from_dict(model.config.to_dict()))
    trained_states, mask = top_states(model, text)
    pretrained_states, _ = top_states(fresh, text)
    assert (trained_states - pretrained_states)[mask].abs().max() > 1e-2

    # The Grounder reads the same checkpoint and answers as the model run on its text states, also from its cache.
    grounder = Grounder.from_checkpoint(checkpoint)
    keyframes = wall_keyframes(3, RECTS)
    proposals = proposals_from_boxes(np.stack([rectangle_box(*r[1:]) for r in RECTS]))
    inputs = prepare_inputs(keyframes, np.stack([p.box.as_oriented_array() for p in proposals]), model.config)
    for query in ["the couch nearest the door", "the red box", "the couch nearest the door"]:
        answer = grounder.ground(keyframes, proposals, query, top_k=2)
        states, mask = text.encode([query], model.config.max_text_length)
        with torch.no_grad():
            expected = torch.softmax(model(inputs, states, mask).logits[0], -1).numpy()
        for candidate in answer.candidates:
            assert candidate.score == pytest.approx(expected[candidate.proposal_id - 10], abs=1e-5)

    # Saved again and loaded, bit for bit; weights without the layer do not match the config.
    copy = save_checkpoint(model, text, root / "copy")
    reloaded, reloaded_text = load_checkpoint(copy)
    assert torch.equal(top_states(reloaded, reloaded_text)[0], trained_states)
    state = {k: v for k, v in model.state_dict().items() if "pretrained_layers" not in k}
    save_checkpoint(model, text, root / "without", state=state)
    with pytest.raises(CheckpointError, match="missing"):
        load_checkpoint(root / "without")

