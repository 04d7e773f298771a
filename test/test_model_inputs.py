"""prepare_inputs / collate_inputs: per-patch world points, box pooling weights and padding, checked against geometry."""
import numpy as np
import pytest
import torch

from model_fixtures import WALL_X, rectangle_box, wall_keyframes
from w2r2_ros.geometry.camera import depth_to_world_map
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.inputs import collate_inputs, prepare_inputs
from w2r2_ros.scene.keyframes import Keyframe

CONFIG = ModelConfig()


def test_patch_xyz_is_the_mean_world_point_of_each_patch():
    keyframe = wall_keyframes(1)[0]
    inputs = prepare_inputs([keyframe], np.zeros((0, 6)), CONFIG)
    assert inputs.frames.shape == (1, 3, CONFIG.image_height, CONFIG.image_width)
    assert float(inputs.frames.min()) >= 0.0 and float(inputs.frames.max()) <= 1.0
    assert inputs.patch_valid.all()
    # Brute force at full resolution: average the world map over each patch's pixel block.
    world = depth_to_world_map(keyframe.depth, keyframe.intrinsics, keyframe.cam_to_world)
    gh, gw = CONFIG.grid_height, CONFIG.grid_width
    h, w = world.shape[:2]
    blocks = world.reshape(gh, h // gh, gw, w // gw, 3).mean(axis=(1, 3)).reshape(-1, 3)
    np.testing.assert_allclose(inputs.patch_xyz[0].numpy(), blocks, atol=0.03)
    np.testing.assert_allclose(inputs.patch_xyz[0, :, 0].numpy(), WALL_X, atol=1e-4)


def test_box_weights_are_the_fraction_of_patch_samples_inside_the_box():
    keyframe = wall_keyframes(1)[0]
    # Everything on the wall right of the image centre (map y < 0), the left half of the image excluded.
    right_half = np.array([WALL_X, -5.0 - 0.06, 1.0, 0.2, 10.0, 10.0])
    elsewhere = np.array([-5.0, 0.0, 1.0, 0.5, 0.5, 0.5])
    inputs = prepare_inputs([keyframe], np.stack([right_half, elsewhere]), CONFIG)
    weights = inputs.box_patch_weights
    assert weights.shape == (2, 1, CONFIG.patches_per_frame)
    grid = weights[0, 0].reshape(CONFIG.grid_height, CONFIG.grid_width)
    half = CONFIG.grid_width // 2
    assert torch.all(grid[:, half:] == 1.0)
    assert torch.all(grid[:, :half] == 0.0)
    assert torch.all(weights[1] == 0.0)


def test_a_box_cutting_through_patches_gets_fractional_weights():
    keyframe = wall_keyframes(1)[0]
    thin = np.array([WALL_X, 0.0, 1.0, 0.2, 0.3, 10.0])  # a vertical strip at the image centre
    weights = prepare_inputs([keyframe], thin[None], CONFIG).box_patch_weights[0, 0]
    assert 0.0 < float(weights.max()) < 1.0
    assert set(np.unique(weights.numpy() * CONFIG.depth_samples_per_patch**2).round(6)) <= set(range(17))


def test_invalid_depth_makes_patches_invalid_and_never_inside_a_box():
    base = wall_keyframes(1)[0]
    depth = base.depth.copy()
    depth[: depth.shape[0] // 2] = 0.0  # top half: no depth
    depth[depth.shape[0] // 2 :, :10] = np.nan
    keyframe = Keyframe.create(0.0, base.rgb, depth, base.intrinsics, base.cam_to_world)
    everything = np.array([WALL_X, 0.0, 1.0, 1.0, 100.0, 100.0])
    inputs = prepare_inputs([keyframe], everything[None], CONFIG)
    valid = inputs.patch_valid[0].reshape(CONFIG.grid_height, CONFIG.grid_width)
    top = CONFIG.grid_height // 2
    assert not valid[:top].any() and valid[top:].all()
    assert torch.all(inputs.patch_xyz[0][~inputs.patch_valid[0]] == 0.0)
    weights = inputs.box_patch_weights[0, 0].reshape(CONFIG.grid_height, CONFIG.grid_width)
    assert torch.all(weights[:top] == 0.0)
    assert 0.0 < float(weights[top, 0]) < 1.0  # the NaN columns are part of this patch
    assert torch.all(weights[top:, 1:] == 1.0)


def test_collate_pads_frames_and_proposals_with_masks():
    a = prepare_inputs(wall_keyframes(2), np.zeros((3, 6)) + [WALL_X, 0, 1, 0.5, 0.5, 0.5], CONFIG)
    b = prepare_inputs(wall_keyframes(3), np.zeros((1, 6)) + [WALL_X, 0, 1, 0.5, 0.5, 0.5], CONFIG)
    batch = collate_inputs([a, b])
    assert batch.frames.shape == (2, 3, 3, CONFIG.image_height, CONFIG.image_width)
    assert batch.box_patch_weights.shape == (2, 3, 3, CONFIG.patches_per_frame)
    assert batch.frame_mask.tolist() == [[True, True, False], [True, True, True]]
    assert batch.object_mask.tolist() == [[True, True, True], [True, False, False]]
    assert torch.equal(batch.box_patch_weights[0, :, :2], a.box_patch_weights)
    assert torch.all(batch.box_patch_weights[0, :, 2] == 0) and torch.all(batch.box_patch_weights[1, 1:] == 0)
    assert not batch.patch_valid[0, 2].any()


def test_bad_inputs_are_one_line_errors():
    keyframe = wall_keyframes(1)[0]
    with pytest.raises(ValueError, match="proposal_boxes"):
        prepare_inputs([keyframe], np.array([[np.nan, 0, 0, 1, 1, 1]]), CONFIG)
    with pytest.raises(ValueError, match="negative"):
        prepare_inputs([keyframe], np.array([[0, 0, 0, 1, -1, 1]]), CONFIG)
    with pytest.raises(ValueError, match="collate_inputs"):
        collate_inputs([])


def test_box_colours_are_the_boxs_own_pixels_where_a_patch_mixes_in_the_wall():
    # A small red rectangle (0.3 m on a grey wall, less than a patch wide at 3 m) and a box around it.
    red = (200, 20, 20)
    rect = (-0.15, 0.15, 0.85, 1.15)
    keyframes = wall_keyframes(2, [(red, *rect)])
    box = rectangle_box(*rect)
    far = np.array([-5.0, 0.0, 1.0, 0.5, 0.5, 0.5])
    inputs = prepare_inputs(keyframes, np.stack([box, far]), CONFIG)
    assert inputs.box_colours.shape == (2, 2, 3)
    np.testing.assert_allclose(inputs.box_colours[0].numpy(), np.tile(np.array(red) / 255.0, (2, 1)), atol=1e-6)
    assert torch.all(inputs.box_colours[1] == 0.0)  # a box no frame shows has no colour
    # What box pooling of the patches' mean colours would give: mixed with the grey wall.
    weights = inputs.box_patch_weights[0, 0]
    patch_means = inputs.frames[0].reshape(3, CONFIG.grid_height, CONFIG.patch_size, CONFIG.grid_width, CONFIG.patch_size)
    patch_means = patch_means.mean(dim=(2, 4)).reshape(3, -1)
    pooled = (patch_means * weights).sum(dim=1) / weights.sum()
    assert float(pooled[0]) < 0.7 * red[0] / 255.0


def test_collate_pads_box_colours_like_the_weights():
    a = prepare_inputs(wall_keyframes(2, [((0, 200, 0), -0.5, 0.5, 0.5, 1.5)]), rectangle_box(-0.5, 0.5, 0.5, 1.5)[None], CONFIG)
    b = prepare_inputs(wall_keyframes(1), np.zeros((2, 6)) + [WALL_X, 0, 1, 0.5, 0.5, 0.5], CONFIG)
    batch = collate_inputs([a, b])
    assert batch.box_colours.shape == (2, 2, 2, 3)
    assert torch.equal(batch.box_colours[0, :1], a.box_colours) and torch.all(batch.box_colours[0, 1] == 0)
    assert torch.all(batch.box_colours[1, :, 1] == 0)
