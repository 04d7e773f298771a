"""W2R2GroundingModel: output shapes, masking of padding, the 3D ablation, and that it learns."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from model_fixtures import rectangle_box, wall_keyframes
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounding_head import MASKED_LOGIT
from w2r2_ros.model.grounding_model import W2R2GroundingModel, video_pool_matrix
from w2r2_ros.model.inputs import GroundingInputs, collate_inputs, prepare_inputs
from w2r2_ros.model.build import new_model
from w2r2_ros.model.pretrained_text import PretrainedText
from w2r2_training.losses import W2R2LossConfig, alignment_loss, w2r2_objective

TEXTS = ["the red box", "the blue box", "the green box on the left"]
RECTANGLES = {
    "red": ((220, 30, 30), -1.5, -0.7, 0.5, 1.3),
    "blue": ((30, 30, 220), -0.3, 0.5, 0.6, 1.4),
    "green": ((30, 200, 30), 0.9, 1.7, 0.4, 1.2),
}


@pytest.fixture(scope="module")
def tokenizer():
    return PretrainedText()


@pytest.fixture(scope="module")
def config():
    return ModelConfig(categories=("box", "wall"))


def scene(n_frames: int, names: list[str], stamp0: float = 0.0) -> GroundingInputs:
    rects = [RECTANGLES[name] for name in names]
    keyframes = wall_keyframes(n_frames, rects, stamp0=stamp0)
    return prepare_inputs(keyframes, np.stack([rectangle_box(*r[1:]) for r in rects]), ModelConfig())


def model_for(config: ModelConfig, seed: int = 0) -> W2R2GroundingModel:
    torch.manual_seed(seed)
    return new_model(config)[0].eval()


def test_shapes_and_padding_masks(config, tokenizer):
    model = model_for(config)
    batch = collate_inputs([scene(2, ["red", "blue", "green"]), scene(3, ["blue"])])
    ids, mask = tokenizer.encode(TEXTS[:2], config.max_text_length)
    with torch.no_grad():
        out = model(batch, ids, mask)
    assert out.logits.shape == (2, 4) and out.no_target_index == 3
    assert out.category_logits.shape == (2, 3, 2)
    assert out.query_embedding.shape == (2, config.hidden_size)
    assert out.object_embeddings.shape == (2, 3, config.hidden_size)
    assert out.object_mask.tolist() == [[True, True, True], [True, False, False]]
    assert torch.all(out.logits[1, 1:3] == MASKED_LOGIT)
    real = out.logits[:, :3][out.object_mask]
    assert torch.all(torch.isfinite(real)) and torch.all(real > MASKED_LOGIT / 2)
    # Whatever sits in padded slots (frames, proposals) must not change the real outputs.
    garbage = collate_inputs([scene(2, ["red", "blue", "green"]), scene(3, ["blue"])])
    garbage.frames[0, 2] = torch.rand_like(garbage.frames[0, 2])
    garbage.boxes[1, 1:] = torch.tensor([1.0, 2.0, 3.0, 1.0, 1.0, 1.0])
    garbage.oriented_boxes[1, 1:] = torch.tensor([1.0, 2.0, 3.0, 1.0, 1.0, 1.0, 0.3])
    garbage.patch_xyz[0, 2] = 5.0
    with torch.no_grad():
        again = model(garbage, ids, mask)
    torch.testing.assert_close(again.logits[:, :3][out.object_mask], real)
    torch.testing.assert_close(again.logits[:, 3], out.logits[:, 3])


def test_one_scene_is_shared_by_several_texts(config, tokenizer):
    model = model_for(config)
    one = scene(2, ["red", "blue"])
    ids, mask = tokenizer.encode(TEXTS[:2], config.max_text_length)
    with torch.no_grad():
        both = model(one, ids, mask).logits
        first = model(one, ids[:1], mask[:1]).logits
        with pytest.raises(ValueError, match="scenes for"):
            model(collate_inputs([one, one, one]), ids, mask)
    torch.testing.assert_close(both[:1], first)


def _moved(inputs: GroundingInputs, offset: float) -> GroundingInputs:
    """The same inputs with every 3D coordinate changed, but the same pooling weights."""
    boxes = inputs.boxes.clone()
    boxes[..., :3] += torch.tensor([offset, -2 * offset, 0.5 * offset])
    boxes[..., 3:] *= 1.5
    patch_xyz = inputs.patch_xyz * 1.3 + offset
    return replace(inputs.with_boxes(boxes), patch_xyz=patch_xyz)


def test_ablate_3d_removes_every_3d_input(config, tokenizer):
    model = model_for(config)
    inputs = scene(2, ["red", "blue", "green"])
    moved = _moved(inputs, 0.7)
    ids, mask = tokenizer.encode(TEXTS[:1], config.max_text_length)
    with torch.no_grad():
        ablated, ablated_moved = model(inputs, ids, mask, ablate_3d=True), model(moved, ids, mask, ablate_3d=True)
        fused, fused_moved = model(inputs, ids, mask), model(moved, ids, mask)
    torch.testing.assert_close(ablated.logits, ablated_moved.logits)
    torch.testing.assert_close(ablated.category_logits, ablated_moved.category_logits)
    # The category head's box-shape term is 3D input: present in the fused pass only.
    assert ablated.shape_category_logits is None and fused.shape_category_logits is not None
    assert (fused.shape_category_logits - fused_moved.shape_category_logits).abs().max() > 1e-3
    assert (fused.logits - fused_moved.logits).abs().max() > 1e-3
    assert (fused.logits - ablated.logits).abs().max() > 1e-3
    # Box pooling still happens when ablated: the pooling weights still matter.
    unpooled = GroundingInputs(**{**vars(inputs), "box_patch_weights": torch.zeros_like(inputs.box_patch_weights)})
    with torch.no_grad():
        assert (model(unpooled, ids, mask, ablate_3d=True).logits - ablated.logits).abs().max() > 1e-3


def test_precomputed_scene_tokens_give_the_same_answer(config, tokenizer):
    model = model_for(config)
    inputs = scene(2, ["red", "blue", "green"])
    ids, mask = tokenizer.encode(TEXTS, config.max_text_length)
    with torch.no_grad():
        for ablate in (False, True):
            tokens = model.scene_tokens(inputs, ablate_3d=ablate)
            direct = model(inputs, ids, mask, ablate_3d=ablate)
            cached = model(None, ids, mask, ablate_3d=ablate, scene=tokens)
            torch.testing.assert_close(cached.logits, direct.logits)
            torch.testing.assert_close(cached.category_logits, direct.category_logits)
        with pytest.raises(ValueError, match="ablate_3d"):
            model(None, ids, mask, ablate_3d=True, scene=model.scene_tokens(inputs))


def test_center_xy_makes_the_model_invariant_to_map_translation(config, tokenizer):
    model = model_for(config)
    inputs = scene(2, ["red", "blue"])
    shift = torch.tensor([4.0, -3.0, 0.0])
    shifted = replace(
        inputs.with_boxes(torch.cat([inputs.oriented_boxes[:, :3] + shift, inputs.oriented_boxes[:, 3:]], dim=-1)),
        patch_xyz=inputs.patch_xyz + shift,
    )
    ids, mask = tokenizer.encode(TEXTS[:1], config.max_text_length)
    with torch.no_grad():
        torch.testing.assert_close(model(inputs, ids, mask).logits, model(shifted, ids, mask).logits, atol=1e-4, rtol=1e-4)


@pytest.mark.slow
def test_training_steps_on_a_tiny_batch_reduce_the_loss(config, tokenizer):
    """Both W2R2 passes, one optimiser: the loss falls and L_PL's gradient reaches the shared image encoder."""
    model = model_for(config, seed=1)
    scenes = [scene(2, ["red", "blue", "green"]), scene(2, ["green", "red"], stamp0=10), scene(2, ["blue", "green"], stamp0=20)]
    batch = collate_inputs(scenes)
    ids, mask = tokenizer.encode(["the red box", "the red box", "the blue box"], config.max_text_length)
    target = torch.tensor([0, 1, 0])
    category_target = torch.tensor([[0, 0, 0], [0, 0, -100], [0, 0, -100]])
    loss_config = W2R2LossConfig(lambda_pl=0.5, margin=1.0, category_weight=0.1)

    def evaluate() -> float:
        model.eval()
        with torch.no_grad():
            return float(alignment_loss(model(batch, ids, mask).logits, target))

    before = evaluate()
    optimiser = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for step in range(12):
        model.train()
        features = model.encode_frames(batch.frames.flatten(0, 1)).view(3, 2, config.patches_per_frame, -1)
        fused = model(batch, ids, mask, patch_features=features)
        pseudo = model(batch, ids, mask, ablate_3d=True, patch_features=features)
        total, terms = w2r2_objective(fused.logits, pseudo.logits, target, loss_config, None, fused.category_logits, category_target)
        optimiser.zero_grad()
        if step == 0:
            terms["pseudo_label"].backward(retain_graph=True)
            assert model.image_encoder.convs[0].weight.grad.abs().sum() > 0
            assert model.box_encoder.mlp[0].weight.grad.abs().sum() > 0  # through the fused pass
            optimiser.zero_grad()
        total.backward()
        optimiser.step()
    after = evaluate()
    assert after < 0.5 * before, (before, after)


def test_video_tokens_average_neighbouring_patches():
    config = ModelConfig(image_width=64, image_height=32)  # a 4 x 2 patch grid -> 2 x 1 video tokens
    matrix = video_pool_matrix(config)
    expected = torch.tensor([[1, 1, 0, 0, 1, 1, 0, 0], [0, 0, 1, 1, 0, 0, 1, 1]], dtype=torch.float32) / 4
    torch.testing.assert_close(matrix, expected)
