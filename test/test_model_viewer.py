"""The model reads the scene in the viewer frame: a map turned about z gives the same inputs and the same answer."""
import numpy as np
import pytest
import torch

from model_fixtures import rectangle_box, wall_keyframes
from w2r2_ros.geometry.boxes import aligned_bounds
from w2r2_ros.geometry.viewer import viewer_from_camera_pose
from w2r2_ros.model.build import new_model
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounding_model import centred_geometry
from w2r2_ros.model.inputs import prepare_inputs
from w2r2_ros.scene.keyframes import Keyframe

RECTS = [((220, 30, 30), -1.5, -0.7, 0.5, 1.3), ((30, 30, 220), 0.3, 1.1, 0.6, 1.4)]
CONFIG = ModelConfig(categories=("box", "wall"))


def turned(angle: float, shift=(2.0, -5.0), oriented: bool = False) -> tuple[list[Keyframe], np.ndarray]:
    """The wall scene with the whole map turned by ``angle`` about z and moved by ``shift``: camera poses and
    proposal boxes move with it, pixels stay. Boxes: turned in yaw with their own sizes (``oriented``, as the
    scene memory's proposals are), else axis-aligned again (sizes swapped for a quarter turn)."""
    c, s = np.cos(angle), np.sin(angle)
    motion = np.eye(4)
    motion[:2, :2] = [[c, -s], [s, c]]
    motion[:2, 3] = shift
    keyframes = [
        Keyframe.create(k.stamp, k.rgb, k.depth, k.intrinsics, motion @ k.cam_to_world) for k in wall_keyframes(3, RECTS)
    ]
    boxes = np.stack([rectangle_box(*r[1:]) for r in RECTS])
    centres = (motion[:3, :3] @ boxes[:, :3].T).T + motion[:3, 3]
    if oriented:
        return keyframes, np.concatenate([centres, boxes[:, 3:], np.full((len(boxes), 1), angle)], axis=1)
    sizes = boxes[:, 3:] if abs(np.sin(angle)) < 0.5 else boxes[:, [4, 3, 5]]
    return keyframes, np.concatenate([centres, sizes], axis=1)


def geometry(angle: float, oriented: bool = False) -> tuple[torch.Tensor, ...]:
    keyframes, boxes = turned(angle, oriented=oriented)
    inputs = prepare_inputs(keyframes, boxes, CONFIG)
    np.testing.assert_allclose(inputs.viewer.numpy(), viewer_from_camera_pose(keyframes[-1].cam_to_world), atol=1e-5)
    return (*centred_geometry(inputs.batched(), CONFIG)[:2], inputs)


@pytest.mark.parametrize("angle", [np.pi / 2, -np.pi, 0.61])
def test_a_turned_map_gives_the_same_patch_points_and_box_centres(angle):
    patches, boxes, inputs = geometry(0.0)
    turned_patches, turned_boxes, turned_inputs = geometry(angle)
    torch.testing.assert_close(turned_patches, patches, atol=2e-4, rtol=0)
    torch.testing.assert_close(turned_boxes[..., :3], boxes[..., :3], atol=2e-4, rtol=0)
    assert not torch.allclose(turned_inputs.patch_xyz, inputs.patch_xyz, atol=0.1)  # the map itself did turn
    if abs(np.sin(angle)) in (0.0, 1.0) or abs(np.cos(angle)) < 1e-9:  # a quarter turn: the same boxes exactly
        torch.testing.assert_close(turned_boxes, boxes, atol=2e-4, rtol=0)
        torch.testing.assert_close(turned_inputs.box_patch_weights, inputs.box_patch_weights)


@pytest.mark.parametrize("angle", [0.61, -2.3, np.pi / 4 + 0.05])
def test_boxes_turned_with_the_map_give_the_same_sizes_at_any_angle(angle):
    """Proposals turned in yaw: the model reads their own sizes along the viewer's axes, so a map turned by any
    angle gives the same boxes; their axis-aligned bounds (pooling, IoU) grow, and reading those would not."""
    _, boxes, inputs = geometry(0.0, oriented=True)
    _, turned_boxes, turned_inputs = geometry(angle, oriented=True)
    torch.testing.assert_close(turned_boxes, boxes, atol=2e-4, rtol=0)
    torch.testing.assert_close(inputs.boxes, inputs.oriented_boxes[:, :6])  # yaw 0: the bounds are the box
    grown = turned_inputs.boxes[:, 3:5].prod(dim=-1) / turned_inputs.oriented_boxes[:, 3:5].prod(dim=-1)
    assert torch.all(grown > 1.2)
    keyframes, oriented = turned(angle, oriented=True)  # the bounds alone, as the model read them before
    bounds_only = centred_geometry(prepare_inputs(keyframes, aligned_bounds(oriented), CONFIG).batched(), CONFIG)[1]
    assert not torch.allclose(bounds_only[..., 3:], boxes[..., 3:], atol=0.05)


def test_left_is_the_cameras_left():
    """The camera looks along map +x, so map +y is its left: the rectangle at y > 0 has viewer y > 0."""
    _, boxes, _ = geometry(0.0)
    assert boxes[0, 1, 1] > boxes[0, 0, 1]  # RECTS[1] (y 0.3..1.1) left of RECTS[0] (y -1.5..-0.7)
    _, turned_boxes, _ = geometry(np.pi / 2)
    assert turned_boxes[0, 1, 1] > turned_boxes[0, 0, 1]


def test_the_model_answers_a_quarter_turned_map_alike():
    torch.manual_seed(0)
    model, text = new_model(CONFIG)
    ids, mask = text.encode(["the box on the left"], CONFIG.max_text_length)
    with torch.no_grad():
        logits = [model(prepare_inputs(*turned(a), CONFIG), ids, mask).logits for a in (0.0, np.pi / 2)]
    torch.testing.assert_close(logits[0], logits[1], atol=1e-3, rtol=0)


def test_an_explicit_viewer_replaces_the_newest_keyframes():
    keyframes, boxes = turned(0.0)
    inputs = prepare_inputs(keyframes, boxes, CONFIG, viewer=np.array([1.0, 2.0, 0.5]))
    assert inputs.viewer.tolist() == pytest.approx([1.0, 2.0, 0.5])
    with pytest.raises(ValueError, match="viewer"):
        prepare_inputs(keyframes, boxes, CONFIG, viewer=np.array([np.nan, 0.0, 0.0]))
