"""CategoryHead's shape term: the box features it reads and their standardisation, that it learns a category
from shape alone, and that the 3D-ablated pass leaves it out."""
import math

import pytest
import torch

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.geometry_encoding import SHAPE_FEATURES, box_shape, box_shape_statistics
from w2r2_ros.model.grounding_head import CategoryHead

# Fixed classes: the head's features are the logits (with text_model, vectors NameMatch scores against names).
CONFIG = ModelConfig(hidden_size=32, categories=("lamp", "table"), text_model="")


def test_box_shape_reads_size_footprint_and_heights_but_not_floor_position():
    box = torch.tensor([1.0, 2.0, 1.5, 0.5, 2.0, 1.0])  # centre z 1.5, height 1 -> base at 1.0
    shape = box_shape(box)
    assert shape.shape == (SHAPE_FEATURES,)
    expected = [math.log(0.5), math.log(2.0), 0.0, math.log(0.5), math.log(2.0), 1.5, 1.0]
    torch.testing.assert_close(shape, torch.tensor(expected))
    moved_and_turned = torch.tensor([-3.0, 7.0, 1.5, 2.0, 0.5, 1.0])
    torch.testing.assert_close(box_shape(moved_and_turned)[3:], shape[3:])


def _lamps_and_tables(n: int, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(1, n, 6) boxes anywhere on the floor: tall and thin (lamp, 0) or low and wide (table, 1)."""
    labels = torch.randint(0, 2, (n,), generator=generator)
    centres = torch.rand(n, 2, generator=generator) * 8.0 - 4.0
    lamp = torch.tensor([0.3, 0.3, 1.6])
    table = torch.tensor([1.4, 0.8, 0.75])
    size = torch.where(labels[:, None] == 0, lamp, table) * (0.8 + 0.4 * torch.rand(n, 3, generator=generator))
    boxes = torch.cat([centres, size[:, 2:] / 2, size], dim=-1)
    return boxes[None], labels[None]


def _train(head: CategoryHead, steps: int = 200) -> float:
    """Train on shape alone (object states and tokens all zero); -> accuracy on fresh boxes."""
    generator = torch.Generator().manual_seed(0)
    optimiser = torch.optim.Adam(head.parameters(), lr=1e-2)
    zeros = torch.zeros(1, 64, CONFIG.hidden_size)
    for _ in range(steps):
        boxes, labels = _lamps_and_tables(64, generator)
        loss = torch.nn.functional.cross_entropy(head(zeros, zeros, head.shape_logits(boxes))[0], labels[0])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    boxes, labels = _lamps_and_tables(64, generator)
    with torch.no_grad():
        return float((head(zeros, zeros, head.shape_logits(boxes)).argmax(-1) == labels).float().mean())


def test_the_shape_term_learns_a_category_from_the_box_alone():
    torch.manual_seed(0)
    assert _train(CategoryHead(CONFIG, shape=True)) == 1.0
    # Without it the same head sees only the (here empty) object states: no better than the majority class.
    assert _train(CategoryHead(CONFIG, shape=False)) < 0.75


def test_the_logits_are_the_two_linear_maps_plus_the_shape_term_when_given():
    torch.manual_seed(0)
    head = CategoryHead(CONFIG, shape=True)
    states, tokens = torch.randn(2, 3, 32), torch.randn(2, 3, 32)
    boxes = torch.cat([torch.randn(2, 3, 3), torch.rand(2, 3, 3) + 0.2], dim=-1)
    linear = head.classify(states) + head.classify_token(tokens)
    shape = head.shape_logits(boxes)
    assert shape.shape == (2, 3, 2) and shape.abs().max() > 1e-3
    torch.testing.assert_close(head(states, tokens), linear)
    torch.testing.assert_close(head(states, tokens, shape), linear + shape)
    assert CategoryHead(CONFIG).shape_logits(boxes) is None


def test_box_shape_statistics_are_the_per_feature_mean_and_spread():
    boxes = torch.tensor([[0.0, 0.0, 0.5, 1.0, 2.0, 1.0], [5.0, 1.0, 1.0, 1.0, 2.0, 2.0]])
    mean, std = box_shape_statistics(boxes)
    shape = box_shape(boxes)
    assert mean == pytest.approx(shape.mean(dim=0).tolist())
    # x and y sizes are equal in both boxes: no spread, floored so that standardising never divides by 0.
    assert std[0] == std[1] == pytest.approx(1e-3) and std[2] == pytest.approx(0.5 * math.log(2.0))
    with pytest.raises(ValueError, match="M >= 1"):
        box_shape_statistics(torch.zeros(0, 6))


def test_the_shape_term_reads_the_box_standardised_by_the_configs_statistics():
    torch.manual_seed(0)
    mean, std = tuple(float(v) for v in range(SHAPE_FEATURES)), (2.0,) * SHAPE_FEATURES
    head = CategoryHead(ModelConfig(hidden_size=32, categories=("lamp", "table"), shape_mean=mean, shape_std=std, text_model=""), shape=True)
    boxes = torch.cat([torch.randn(1, 3, 3), torch.rand(1, 3, 3) + 0.2], dim=-1)
    expected = head.classify_shape((box_shape(boxes) - torch.tensor(mean)) / 2.0)
    torch.testing.assert_close(head.shape_logits(boxes), expected)
    assert "shape_mean" not in head.state_dict()  # from the JSON config, not saved with the weights
    with pytest.raises(ValueError, match="shape_std"):
        ModelConfig(shape_mean=mean, shape_std=(0.0,) * SHAPE_FEATURES)
    with pytest.raises(ValueError, match="need 7 values"):
        CategoryHead(ModelConfig(hidden_size=32, shape_mean=(0.0,), shape_std=(1.0,)), shape=True)
