"""object_colour_features and the colour head's pixel term: a proposal's colour from its own pixels."""
import pytest
import torch

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounding_head import CategoryHead
from w2r2_ros.model.object_colour import COLOUR_FEATURES, object_colour_features


def test_features_are_the_sample_weighted_mean_colour_and_its_chromaticity():
    # One box seen in two frames: 3 samples' worth of red-ish in the first, 1 of blue in the second.
    colours = torch.tensor([[[[0.8, 0.2, 0.0], [0.0, 0.0, 0.4]]]])  # (B=1, N=1, K=2, 3)
    weights = torch.tensor([[[[0.5, 0.25, 0.0], [0.25, 0.0, 0.0]]]])  # (1, 1, 2, P=3): 0.75 and 0.25 of a patch
    features, seen = object_colour_features(colours, weights)
    rgb = torch.tensor([0.6, 0.15, 0.1])
    torch.testing.assert_close(features[0, 0], torch.cat([rgb * 2 - 1, rgb / rgb.sum()]))
    assert features.shape == (1, 1, COLOUR_FEATURES) and seen.tolist() == [[True]]


def test_a_proposal_no_frame_shows_has_zero_features_and_no_pixel_logits():
    features, seen = object_colour_features(torch.rand(1, 2, 3, 3), torch.zeros(1, 2, 3, 4))
    assert not seen.any() and torch.all(features == 0)
    head = CategoryHead(ModelConfig(hidden_size=32, colours=("red", "blue"), text_model=""), 2, pixels=True)
    assert torch.all(head.pixel_logits(features, seen) == 0)
    assert CategoryHead(ModelConfig(hidden_size=32, text_model=""), 2).pixel_logits(features, seen) is None


def test_the_pixel_term_learns_colour_names_that_brightness_does_not_change():
    # Faces of one colour under different shading (brightness 0.3-1.0) must get one name.
    torch.manual_seed(0)
    base = torch.tensor([[0.9, 0.1, 0.1], [0.1, 0.8, 0.1], [0.9, 0.5, 0.1]])  # red, green, orange
    labels = torch.randint(0, 3, (1, 256))
    shade = torch.rand(1, 256, 1) * 0.7 + 0.3
    colours = (base[labels] * shade)[:, :, None]  # (1, 256, K=1, 3)
    features, seen = object_colour_features(colours, torch.ones(1, 256, 1, 1))
    head = CategoryHead(ModelConfig(hidden_size=32, colours=("red", "green", "orange"), text_model=""), 3, pixels=True)
    optimizer = torch.optim.Adam(head.classify_pixels.parameters(), lr=1e-2)
    for _ in range(200):
        loss = torch.nn.functional.cross_entropy(head.pixel_logits(features, seen)[0], labels[0])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    accuracy = (head.pixel_logits(features, seen).argmax(-1) == labels).float().mean()
    assert float(accuracy) == pytest.approx(1.0)


def test_the_model_adds_the_pixel_term_to_its_colour_logits_in_both_passes():
    import numpy as np

    from model_fixtures import rectangle_box, wall_keyframes
    from w2r2_ros.model.build import new_model
    from w2r2_ros.model.inputs import prepare_inputs

    config = ModelConfig(categories=("box",), colours=("red", "blue"))
    rects = [((220, 30, 30), -1.5, -0.7, 0.5, 1.3), ((30, 30, 220), -0.3, 0.5, 0.6, 1.4)]
    inputs = prepare_inputs(wall_keyframes(2, rects), np.stack([rectangle_box(*r[1:]) for r in rects]), config)
    torch.manual_seed(0)
    model, tokenizer = new_model(config)
    model.eval()
    ids, mask = tokenizer.encode(["the red box"], config.max_text_length)
    with torch.no_grad():
        fused = model(inputs, ids, mask)
        ablated = model(inputs, ids, mask, ablate_3d=True)
        features, seen = object_colour_features(inputs.box_colours[None], inputs.box_patch_weights[None])
        expected = model.names.colour_logits(model.colour_head.pixel_logits(features, seen))
    torch.testing.assert_close(fused.pixel_colour_logits, expected)
    torch.testing.assert_close(ablated.pixel_colour_logits, expected)  # colour is "What": kept without 3D
    assert seen.all() and not torch.equal(expected[0, 0], expected[0, 1])
    off = new_model(ModelConfig(**{**config.to_dict(), "colour_pixels": False}))[0].eval()
    with torch.no_grad():
        assert off(inputs, ids, mask).pixel_colour_logits is None
