"""RelationHead: the geometry it measures from the anchors, the 3D ablation, and that it learns relations."""
import math

import pytest
import torch

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounding_head import NameMatch
from w2r2_ros.model.relation_head import ANCHOR_GEOMETRY, OWN_GEOMETRY, RANK_BUMPS, RANKED, RelationHead
from w2r2_training.losses import anchor_loss

# Fixed-class heads: the category inputs below are logits over these two classes (NameMatch without names).
CONFIG = ModelConfig(hidden_size=32, categories=("chair", "table"), text_model="")
NAMES = NameMatch(CONFIG)


def test_geometry_is_measured_from_the_selected_anchors():
    head = RelationHead(CONFIG)
    boxes = torch.tensor([[[1.0, 2.0, 0.5, 1.0, 2.0, 1.0], [4.0, 6.0, 1.5, 2.0, 1.0, 0.5], [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]]])
    weights = torch.tensor([[[0.0, 1.0, 0.0], [0.5, 0.5, 0.0]]])  # pointer 0 on box 1, pointer 1 halfway 0 <-> 1
    geometry = head.geometry(boxes, weights)[0]
    assert geometry.shape == (3, 6 + 7 * 2)
    torch.testing.assert_close(geometry[:, :3], boxes[0, :, :3])
    torch.testing.assert_close(geometry[:, 3:6], boxes[0, :, 3:].log())
    # Pointer 0: offset from box 1's centre, its floor distance, box 1's log size.
    torch.testing.assert_close(geometry[0, 6:9], torch.tensor([-3.0, -4.0, -1.0]))
    assert float(geometry[0, 9]) == pytest.approx(5.0)
    torch.testing.assert_close(geometry[0, 10:13], torch.tensor([math.log(2.0), 0.0, math.log(0.5)]))
    # Pointer 1: the expected box of the two, centre (2.5, 4, 1).
    torch.testing.assert_close(geometry[2, 13:16], torch.tensor([-2.5, -4.0, -1.0]))
    assert float(geometry[2, 16]) == pytest.approx(math.hypot(2.5, 4.0))


def test_the_ablated_pass_scores_every_proposal_alike():
    torch.manual_seed(0)
    head = RelationHead(CONFIG)
    text, anchors, objects = torch.randn(2, 3, 32), torch.randn(2, 2, 32), torch.randn(2, 4, 32)
    categories = torch.randn(2, 4, 2)
    boxes = torch.cat([torch.randn(2, 4, 3), torch.rand(2, 4, 3) + 0.2], dim=-1)
    mask = torch.ones(2, 4, dtype=torch.bool)
    fused, *_ = head(text, anchors, objects, NAMES, categories, boxes, mask)
    ablated, *_ = head(text, anchors, objects, NAMES, categories, boxes, mask, ablate_3d=True)
    assert fused.std(dim=1).min() > 1e-4
    torch.testing.assert_close(ablated, ablated[:, :1].expand_as(ablated))


def _relation_batch(batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    """Four "chairs" and one "table" at random floor positions; relation 0 = nearest the table,
    1 = farthest from it, 2 = leftmost (+y). Object states and category logits say only chair/table; the
    GRD text only the relation, the anchors' text "table"; the fused ANC states are one fixed vector."""
    n = 5
    centres = torch.rand(batch, n, 3, generator=generator) * torch.tensor([6.0, 6.0, 0.0])
    boxes = torch.cat([centres, torch.full((batch, n, 3), 0.5)], dim=-1)
    objects = torch.zeros(batch, n, 32)
    objects[:, :4, 0] = 1.0
    objects[:, 4, 1] = 1.0
    relation = torch.randint(0, 3, (batch,), generator=generator)
    text = torch.zeros(batch, 3, 32)
    text[:, 0] = torch.nn.functional.one_hot(relation, 32).float()
    text[:, 1:, 3] = 1.0
    distance = (centres[:, :4, :2] - centres[:, 4:, :2]).norm(dim=-1)
    target = torch.where(
        relation == 0,
        distance.argmin(dim=1),
        torch.where(relation == 1, distance.argmax(dim=1), centres[:, :4, 1].argmax(dim=1)),
    )
    anchors = torch.zeros(batch, 2, 32)
    anchors[..., 2] = 1.0
    return (text, anchors, objects, NAMES, objects[..., :2] * 5.0, boxes), target


def test_it_learns_nearest_farthest_and_leftmost_from_geometry_alone():
    torch.manual_seed(0)
    generator = torch.Generator().manual_seed(0)
    head = RelationHead(CONFIG)
    optimiser = torch.optim.Adam(head.parameters(), lr=3e-3)
    mask = torch.ones(64, 5, dtype=torch.bool)
    anchor_target = torch.full((64, 2), 4)
    for _ in range(300):
        inputs, target = _relation_batch(64, generator)
        scores, anchor_logits, *_ = head(*inputs, mask)
        loss = torch.nn.functional.cross_entropy(scores[:, :4], target) + anchor_loss(anchor_logits, anchor_target)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    inputs, target = _relation_batch(512, torch.Generator().manual_seed(1))
    with torch.no_grad():
        scores, *_ = head(*inputs, torch.ones(512, 5, dtype=torch.bool))
        ablated, *_ = head(*inputs, torch.ones(512, 5, dtype=torch.bool), ablate_3d=True)
    assert float((scores[:, :4].argmax(dim=1) == target).float().mean()) > 0.9
    # Without 3D every chair scores the same: the relation cannot be told.
    torch.testing.assert_close(ablated[:, :4], ablated[:, :1].expand(-1, 4))


def _linear_only(weights: dict) -> RelationHead:
    """A head whose score is the linear term alone, with the given constant weights (column -> weight) whatever
    the text says: the MLP's term and the text's part of the linear read-out silenced."""
    head = RelationHead(CONFIG)
    with torch.no_grad():
        for layer in (head.select, head.linear):
            layer.weight.zero_()
            layer.bias.zero_()
        for column, weight in weights.items():
            head.linear.bias[column] = weight
    return head


def test_the_linear_term_lets_the_text_rank_by_raw_geometry():
    """With the MLP's term silenced, a text whose linear weights are minus the log sizes scores minus log
    volume: "the smallest" is the arg-max; without 3D the term is gone."""
    head = _linear_only({3: -1.0, 4: -1.0, 5: -1.0})  # own log size (geometry columns 3..5)
    sizes = torch.tensor([[1.0, 1.0, 1.0], [0.5, 0.6, 1.0], [2.0, 0.3, 0.4], [1.0, 0.5, 1.0]])
    boxes = torch.cat([torch.randn(4, 3), sizes], dim=-1)[None]
    mask = torch.ones(1, 4, dtype=torch.bool)
    args = (torch.randn(1, 3, 32), torch.randn(1, 2, 32), torch.randn(1, 4, 32), NAMES, torch.randn(1, 4, 2), boxes, mask)
    scores, *_ = head(*args)
    torch.testing.assert_close(scores[0], -sizes.prod(dim=-1).log())
    assert int(scores[0].argmax()) == 2  # volume 0.24, the smallest
    ablated, *_ = head(*args, ablate_3d=True)
    torch.testing.assert_close(ablated, torch.zeros_like(ablated))
    off = ModelConfig(hidden_size=32, categories=("chair",), relation_linear=False, relation_ranks=False, text_model="")
    assert RelationHead(off).linear is None


def test_the_relation_classifier_exists_only_with_a_relation_list():
    text = torch.randn(5, 3, 32)
    assert RelationHead(CONFIG).classify_relation(text) is None
    head = RelationHead(ModelConfig(hidden_size=32, categories=("chair",), relations=("front", "back", "nearest")))
    assert head.classify_relation(text).shape == (5, 3)


def _rank_columns(quantity: int, side: int) -> slice:
    """Columns of ``RelationHead.ranks`` for one ranked quantity and side (0: count above, 1: below):
    [count, bump at 1, bump at 2, bump at 3]."""
    start = (quantity * 2 + side) * (1 + len(RANK_BUMPS))
    return slice(start, start + 1 + len(RANK_BUMPS))


def test_ranks_count_the_candidates_above_and_below_each_proposal():
    """Three chairs at y = 0, 1, 2 and a table at y = 0.5 that is no candidate: the middle chair has one
    candidate to its left (+y) and one to its right whatever the table does; counts are in candidates."""
    head = RelationHead(CONFIG)
    boxes = torch.tensor([[[0.0, 0.0, 0.0, 1.0, 1.0, 1.0], [0.0, 1.0, 0.0, 1.0, 1.0, 1.0],
                           [0.0, 2.0, 0.0, 1.0, 1.0, 1.0], [0.0, 0.5, 0.0, 1.0, 1.0, 1.0]]])
    anchor = torch.tensor([[[0.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 1.0]]])  # both pointers on the table
    ranks = head.ranks(head.geometry(boxes, anchor), torch.tensor([[1.0, 1.0, 1.0, 0.0]]))[0]
    left = RANKED.index("left")
    above, below = ranks[:, _rank_columns(left, 0)], ranks[:, _rank_columns(left, 1)]
    torch.testing.assert_close(above[:3, 0], torch.tensor([2.0, 1.0, 0.0]), atol=1e-3, rtol=0)
    torch.testing.assert_close(below[:3, 0], torch.tensor([0.0, 1.0, 2.0]), atol=1e-3, rtol=0)
    assert float(above[1, 1]) == pytest.approx(1.0, abs=1e-3) and float(above[0, 1]) < 0.05  # bump at count 1
    # Distance to the table (first anchor): 0.5, 0.5, 1.5 for the chairs: the first two tie (half a count each).
    distance = len(RANKED)
    torch.testing.assert_close(ranks[:3, _rank_columns(distance, 1)][:, 0], torch.tensor([0.5, 0.5, 2.0]), atol=1e-3, rtol=0)


def test_the_ranks_let_the_text_ask_for_the_second_from_the_left():
    """A text whose linear weight sits on the bump at one candidate further left picks the second chair from
    the left, past a table between them (no candidate); without 3D the ranks are gone."""
    head = _linear_only({OWN_GEOMETRY + ANCHOR_GEOMETRY * 2 + _rank_columns(RANKED.index("left"), 0).start + 1: 10.0})
    y = torch.tensor([3.0, 0.0, 2.5, 1.0])  # chairs at 3, 0, 1; the table at 2.5 lies between the first two
    boxes = torch.cat([torch.zeros(4, 1), y[:, None], torch.zeros(4, 1), torch.ones(4, 3)], dim=-1)[None]
    mask = torch.ones(1, 4, dtype=torch.bool)
    args = (torch.randn(1, 3, 32), torch.randn(1, 2, 32), torch.randn(1, 4, 32), NAMES, torch.randn(1, 4, 2), boxes, mask)
    candidates = torch.tensor([[1.0, 1.0, 0.0, 1.0]])
    scores, *_ = head(*args, candidates=candidates)
    assert int(scores[0].argmax()) == 3
    everyone, *_ = head(*args)  # every proposal a candidate: the table is now the second from the left
    assert int(everyone[0].argmax()) == 2
    ablated, *_ = head(*args, ablate_3d=True, candidates=candidates)
    torch.testing.assert_close(ablated, torch.zeros_like(ablated))


def test_ranks_need_the_linear_term_and_a_positive_softness():
    with pytest.raises(ValueError, match="relation_linear"):
        ModelConfig(relation_linear=False)
    with pytest.raises(ValueError, match="softness"):
        ModelConfig(relation_rank_softness=0.0)
    assert RelationHead(ModelConfig(hidden_size=32, relation_ranks=False, text_model="")).linear.out_features == 20


def test_the_names_probability_is_sharp_where_the_open_match_is_not():
    """Open vocabulary: an object whose features point at "table" has probability ~0 of being the "chair" a
    text names, while the (1 + cos) / 2 match still gives it 0.5: the ranks count candidates by the former."""
    names = NameMatch(ModelConfig(hidden_size=32, categories=("chair", "table")))
    objects = torch.zeros(1, 2, 384)
    objects[0, 0, 0] = objects[0, 1, 1] = 1.0  # a chair, a table
    with torch.no_grad():
        names.categories.names.copy_(torch.eye(2, 384))
        logits = names.category_logits(objects)
        probability, match = names.probability(logits, logits[:, :1])[0, 0], names.match(objects, objects[:, :1])[0, 0]
    assert float(probability[0]) > 0.99 and float(probability[1]) < 0.01
    assert float(match[1]) == pytest.approx(0.5)
