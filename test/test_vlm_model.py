"""W2R2VideoLLM on a tiny random Qwen2.5-VL: what trains, the 2D-only pass, the scene cache, checkpoints and their base."""
from __future__ import annotations

import dataclasses
import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from vlm_fixtures import random_inputs, tiny_video_llm, write_base
from w2r2_ros.model.checkpoint import CheckpointError, load_checkpoint, load_checkpoint_metadata, save_checkpoint
from w2r2_ros.model.inputs import collate_inputs
from w2r2_ros.vlm.checkpoint import BASE_OVERRIDE_ENV, WEIGHTS_FILE
from w2r2_ros.vlm.model import iter_lora_module_names

TEXTS = ["the red chair next to the table", "the lamp on the left"]


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    return write_base(tmp_path_factory.mktemp("vlm") / "tiny-base")


@pytest.fixture(scope="module")
def model(base):
    model, tokenizer = tiny_video_llm(base)
    return model.eval(), tokenizer


def test_lora_adapts_only_the_language_models_projections_and_the_vision_tower_is_frozen(base, model):
    net, _ = model
    adapted = list(iter_lora_module_names(net))
    assert len(adapted) == 2 * 7  # 2 text layers x (q, k, v, o, gate, up, down)
    assert all(".language_model.layers." in name for name in adapted)
    trainable = {name for name, p in net.named_parameters() if p.requires_grad}
    assert not any(".visual." in name for name in trainable)
    assert not any("embed_tokens" in name or "base_layer" in name for name in trainable)
    assert {"tokens.markers", "tokens.object_embedding", "tokens.unseen_object", "heads.query.weight", "where.mlp.0.weight"} <= trainable
    assert sum("lora_" in name for name in trainable) == 2 * len(adapted)

    unfrozen, _ = tiny_video_llm(base, train_vision=True)
    visual = [p for name, p in unfrozen.named_parameters() if ".visual." in name]
    assert visual and all(p.requires_grad for p in visual)


def test_the_2d_only_pass_ignores_where_and_the_fused_pass_uses_it(model):
    net, tokenizer = model
    inputs = random_inputs()
    g = torch.Generator().manual_seed(5)
    moved = dataclasses.replace(
        inputs.with_boxes(torch.cat([inputs.boxes[:, :3] + torch.randn(4, 3, generator=g), inputs.boxes[:, 3:] * 1.5], dim=1)),
        patch_xyz=inputs.patch_xyz + torch.randn(inputs.patch_xyz.shape, generator=g),
    )
    ids, mask = tokenizer.encode(TEXTS, 24)
    with torch.no_grad():
        features = net.encode_frames(inputs.frames)[None]
        ablated = [net(x, ids, mask, ablate_3d=True, patch_features=features).logits for x in (inputs, moved)]
        fused = [net(x, ids, mask, patch_features=features).logits for x in (inputs, moved)]
    assert torch.equal(ablated[0], ablated[1])
    assert not torch.allclose(fused[0], fused[1], atol=1e-4)
    assert not torch.allclose(fused[0], ablated[0], atol=1e-4)


def test_a_cached_scene_answers_as_the_full_sequence_does(model):
    net, tokenizer = model
    inputs = random_inputs(seed=1)
    ids, mask = tokenizer.encode(TEXTS, 24)
    with torch.no_grad():
        full = net(inputs, ids, mask)
        scene = net.scene_tokens(inputs)
        cached = net(None, ids, mask, scene=scene)
        again = net(None, ids[1:], mask[1:], scene=scene)  # the cache holds the scene prefix only
    assert full.logits.shape == (2, 5)
    torch.testing.assert_close(cached.logits, full.logits, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(again.logits, full.logits[1:], atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match="ablate_3d"):
        net(None, ids, mask, ablate_3d=True, scene=scene)


def test_padding_frames_and_proposals_changes_no_score(model):
    net, tokenizer = model
    small, large = random_inputs(frames=2, objects=3, seed=2), random_inputs(frames=3, objects=5, seed=3)
    ids, mask = tokenizer.encode(TEXTS, 24)
    with torch.no_grad():
        alone = net(small, ids[:1], mask[:1]).logits
        batched = net(collate_inputs([small, large]), ids, mask).logits
    torch.testing.assert_close(batched[0, :3], alone[0, :3], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(batched[0, -1], alone[0, -1], atol=1e-5, rtol=1e-5)
    assert (batched[0, 3:5] < -1e3).all()  # padded proposals never win


def test_save_then_load_gives_identical_logits_and_keeps_no_base_weight(base, model, tmp_path):
    net, tokenizer = model
    directory = save_checkpoint(net, tokenizer, tmp_path / "ckpt", {"step": 3})
    loaded, loaded_tokenizer = load_checkpoint(directory)
    inputs = random_inputs(seed=4)
    ids, mask = tokenizer.encode(TEXTS, 24)
    with torch.no_grad():
        assert torch.equal(loaded(inputs, ids, mask).logits, net(inputs, ids, mask).logits)
    assert torch.equal(loaded_tokenizer.encode(TEXTS, 24)[0], ids)
    saved = load_file(str(directory / WEIGHTS_FILE))
    assert set(saved) == set(net.trainable_state())
    assert not any("embed_tokens" in name or "base_layer" in name or ".visual." in name for name in saved)
    assert load_checkpoint_metadata(directory) == {"step": 3}
    document = json.loads((directory / "config.json").read_text())
    assert document["vlm"]["base_model"] == str(base) and len(document["vlm"]["base_config_sha256"]) == 64


def test_a_checkpoint_from_before_the_deepspeed_changes_loads_with_the_same_logits(model, tmp_path):
    """Written before ``LearnedTokens`` and the (1,) logit scale: top-level marker/object names, a 0-dim scale."""
    net, tokenizer = model
    directory = save_checkpoint(net, tokenizer, tmp_path / "ckpt")
    state = load_file(str(directory / WEIGHTS_FILE))
    old = {name.removeprefix("tokens."): tensor for name, tensor in state.items()}
    old["heads.log_logit_scale"] = old["heads.log_logit_scale"].reshape(())
    assert "markers" in old and "tokens.markers" not in old
    save_file(old, str(directory / WEIGHTS_FILE), metadata={"format": "w2r2-video-llm"})
    loaded, _ = load_checkpoint(directory)
    inputs = random_inputs(seed=5)
    ids, mask = tokenizer.encode(TEXTS, 24)
    with torch.no_grad():
        assert torch.equal(loaded(inputs, ids, mask).logits, net(inputs, ids, mask).logits)


def test_a_missing_base_is_one_line_naming_it(model, tmp_path):
    net, tokenizer = model
    directory = save_checkpoint(net, tokenizer, tmp_path / "ckpt")
    for absent in (str(tmp_path / "no-such-base"), "nobody/absent-vlm"):
        document = json.loads((directory / "config.json").read_text())
        document["vlm"]["base_model"] = absent
        (directory / "config.json").write_text(json.dumps(document))
        with pytest.raises(CheckpointError) as error:
            load_checkpoint(directory)
        message = str(error.value)
        assert "\n" not in message and f"needs base model {absent}" in message
    assert "HF_HUB_OFFLINE=1" in message  # the hub id was looked up in the local cache only


def test_a_different_base_is_refused(base, model, tmp_path, monkeypatch):
    net, tokenizer = model
    directory = save_checkpoint(net, tokenizer, tmp_path / "ckpt")
    other = shutil.copytree(base, tmp_path / "other-base")
    config = json.loads((other / "config.json").read_text())
    config["text_config"]["rms_norm_eps"] = 1e-6  # another model, whatever its weights
    (other / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv(BASE_OVERRIDE_ENV, str(other))
    with pytest.raises(CheckpointError, match="config hash .* differs from the checkpoint's"):
        load_checkpoint(directory)
    monkeypatch.setenv(BASE_OVERRIDE_ENV, str(shutil.copytree(base, tmp_path / "same-base-elsewhere")))
    loaded, _ = load_checkpoint(directory)  # the same base in another place is fine
    assert loaded.vlm_config.base_config_sha256 == net.vlm_config.base_config_sha256


def test_gradient_checkpointing_changes_no_gradient(base):
    inputs = random_inputs(seed=6)
    grads = []
    for checkpointing in (False, True):
        net, tokenizer = tiny_video_llm(base, gradient_checkpointing=checkpointing)
        net.train()
        ids, mask = tokenizer.encode(TEXTS, 24)
        net(inputs, ids, mask).logits.logsumexp(-1).sum().backward()
        grads.append({name: p.grad for name, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys() and any("lora_B" in name for name in grads[0])
    for name, grad in grads[0].items():
        torch.testing.assert_close(grads[1][name], grad, atol=1e-6, rtol=1e-5)
