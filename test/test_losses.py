"""The W2R2 losses pinned on small hand-computed tensors (expected values from math, not from the code under test)."""
import math

import pytest
import torch

from w2r2_training.losses import (
    W2R2LossConfig,
    alignment_loss,
    anchor_loss,
    category_loss,
    text_category_loss,
    text_relation_loss,
    pseudo_label_loss,
    w2r2_objective,
)


def log_softmax(values: list[float], index: int) -> float:
    return values[index] - math.log(sum(math.exp(v) for v in values))


def test_alignment_loss_is_the_cross_entropy_of_the_target():
    logits = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    target = torch.tensor([1, 2])  # the second sample's target is "no target" (last column)
    expected = -(log_softmax([1.0, 2.0, 0.0], 1) + log_softmax([0.5, -1.0, 3.0], 2)) / 2
    assert float(alignment_loss(logits, target)) == pytest.approx(expected, rel=1e-6)


def test_label_smoothing_spreads_mass_only_over_same_class_distractors():
    row = [1.0, 2.0, 0.0, 0.5, -0.5]
    logits = torch.tensor([row, row])
    target = torch.tensor([0, 0])
    same_class = torch.tensor(
        [
            [True, False, True, True, False],  # target itself marked too: it must be ignored
            [False, False, False, False, False],  # no same-class distractor: stays one-hot
        ]
    )
    eps = 0.2
    first = -((1 - eps) * log_softmax(row, 0) + eps / 2 * (log_softmax(row, 2) + log_softmax(row, 3)))
    second = -log_softmax(row, 0)
    value = alignment_loss(logits, target, same_class, label_smoothing=eps)
    assert float(value) == pytest.approx((first + second) / 2, rel=1e-6)
    with pytest.raises(ValueError, match="same_class_mask"):
        alignment_loss(logits, target, None, label_smoothing=eps)


# CE_2D = log 2 (uniform over two columns); CE_fused = log(1 + e^-3); their gap is 0.6446 nats.
CE_2D = math.log(2.0)
CE_FUSED = math.log(1.0 + math.exp(-3.0))


def pl_inputs():
    fused = torch.tensor([[3.0, 0.0]], requires_grad=True)
    two_d = torch.tensor([[0.0, 0.0]], requires_grad=True)
    return fused, two_d, torch.tensor([0])


def test_relative_hinge_is_zero_when_fused_beats_2d_by_more_than_the_margin():
    fused, two_d, target = pl_inputs()
    loss = pseudo_label_loss(fused, two_d, target, margin=0.5)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.all(fused.grad == 0) and torch.all(two_d.grad == 0)


def test_relative_hinge_is_positive_and_its_gradient_reaches_both_passes():
    fused, two_d, target = pl_inputs()
    loss = pseudo_label_loss(fused, two_d, target, margin=1.0)
    assert loss.item() == pytest.approx(1.0 - (CE_2D - CE_FUSED), rel=1e-6)
    loss.backward()
    # d/dz CE = softmax - onehot; the loss is +CE_fused - CE_2D.
    p_fused = math.exp(3.0) / (math.exp(3.0) + 1.0)
    torch.testing.assert_close(fused.grad, torch.tensor([[p_fused - 1.0, 1.0 - p_fused]]))
    torch.testing.assert_close(two_d.grad, torch.tensor([[0.5, -0.5]]))  # lowers the 2D pass's target logit


def test_relative_hinge_averages_over_the_batch():
    fused = torch.tensor([[3.0, 0.0], [0.0, 0.0]])
    two_d = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    target = torch.tensor([0, 1])
    # Sample 2: both passes equal, gap 0, hinge = margin.
    expected = (max(0.0, 1.0 - (CE_2D - CE_FUSED)) + 1.0) / 2
    assert float(pseudo_label_loss(fused, two_d, target, margin=1.0)) == pytest.approx(expected, rel=1e-6)


def test_absolute_form_penalises_a_confident_2d_pass_only():
    fused, two_d, target = pl_inputs()
    loss = pseudo_label_loss(fused, two_d, target, margin=1.0, form="absolute")
    assert loss.item() == pytest.approx(1.0 - CE_2D, rel=1e-6)
    loss.backward()
    assert fused.grad is None or torch.all(fused.grad == 0)
    torch.testing.assert_close(two_d.grad, torch.tensor([[0.5, -0.5]]))
    assert pseudo_label_loss(fused, two_d, target, margin=0.5, form="absolute").item() == 0.0
    with pytest.raises(ValueError, match="form"):
        pseudo_label_loss(fused, two_d, target, margin=1.0, form="other")


def test_category_loss_ignores_padding():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])
    assert float(category_loss(logits, torch.tensor([[0, -100]]))) == pytest.approx(-log_softmax([2.0, 0.0], 0), rel=1e-6)
    assert float(category_loss(logits, torch.tensor([[-100, -100]]))) == 0.0


def test_anchor_loss_averages_the_named_anchors_and_ignores_the_rest():
    # Two samples, two pointers over three proposals; the second sample names no anchor.
    logits = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], [[5.0, 0.0, 0.0], [0.0, 0.0, 5.0]]])
    target = torch.tensor([[0, 1], [-1, -1]])
    expected = -(log_softmax([1.0, 0.0, 0.0], 0) + log_softmax([0.0, 2.0, 0.0], 1)) / 2
    assert float(anchor_loss(logits, target)) == pytest.approx(expected, rel=1e-6)
    assert float(anchor_loss(logits, torch.full((2, 2), -1))) == 0.0


def test_text_category_loss_averages_target_and_anchor_labels_and_skips_unknown_ones():
    target_logits = torch.tensor([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    anchor_logits = torch.tensor([[[0.0, 1.0, 0.0], [0.0, 0.0, 3.0]], [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]])
    # Sample 0: target category 0, anchors 1 and 2; sample 1: unknown target, no anchors.
    loss = text_category_loss(target_logits, torch.tensor([0, -1]), anchor_logits, torch.tensor([[1, 2], [-1, -1]]))
    expected = -(log_softmax([2.0, 0.0, 0.0], 0) + log_softmax([0.0, 1.0, 0.0], 1) + log_softmax([0.0, 0.0, 3.0], 2)) / 3
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    nothing = text_category_loss(target_logits, torch.tensor([-1, -1]), anchor_logits, torch.full((2, 2), -1))
    assert float(nothing) == 0.0


def test_text_relation_loss_averages_the_labelled_samples():
    logits = torch.tensor([[0.0, 3.0, 0.0], [1.0, 0.0, 0.0], [2.0, 2.0, 2.0]])
    loss = text_relation_loss(logits, torch.tensor([1, 2, -1]))  # the third sample has no relation label
    expected = -(log_softmax([0.0, 3.0, 0.0], 1) + log_softmax([1.0, 0.0, 0.0], 2)) / 2
    assert float(loss) == pytest.approx(expected, rel=1e-6)
    assert float(text_relation_loss(logits, torch.full((3,), -1))) == 0.0
    fused, two_d, target = pl_inputs()
    config = W2R2LossConfig(lambda_pl=0.0, category_weight=0.0, text_relation_weight=0.5)
    total, terms = w2r2_objective(fused, None, target, config, text_relation=(logits, torch.tensor([1, 2, -1])))
    assert terms["text_relation"].item() == pytest.approx(expected, rel=1e-6)
    assert total.item() == pytest.approx(-log_softmax([3.0, 0.0], 0) + 0.5 * expected, rel=1e-6)


def test_objective_combines_the_named_terms():
    fused, two_d, target = pl_inputs()
    category_logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])
    category_target = torch.tensor([[0, -100]])
    config = W2R2LossConfig(lambda_pl=0.5, margin=1.0, category_weight=0.25)
    total, terms = w2r2_objective(fused, two_d, target, config, None, category_logits, category_target)
    align = -log_softmax([3.0, 0.0], 0)
    pseudo = 1.0 - (CE_2D - CE_FUSED)
    category = -log_softmax([2.0, 0.0], 0)
    assert terms["align"].item() == pytest.approx(align, rel=1e-6)
    assert terms["pseudo_label"].item() == pytest.approx(pseudo, rel=1e-6)
    assert terms["category"].item() == pytest.approx(category, rel=1e-6)
    assert terms["ce_2d"].item() == pytest.approx(CE_2D, rel=1e-6)
    assert total.item() == pytest.approx(align + 0.5 * pseudo + 0.25 * category, rel=1e-6)
    assert terms["anchor"].item() == 0.0  # no anchor inputs
    anchor_logits, anchor_target = torch.tensor([[[0.0, 1.0]]]), torch.tensor([[1]])
    config = W2R2LossConfig(lambda_pl=0.5, margin=1.0, category_weight=0.25, anchor_weight=2.0)
    total, terms = w2r2_objective(
        fused, two_d, target, config, None, category_logits, category_target, anchor_logits, anchor_target
    )
    anchor = -log_softmax([0.0, 1.0], 1)
    assert terms["anchor"].item() == pytest.approx(anchor, rel=1e-6)
    assert total.item() == pytest.approx(align + 0.5 * pseudo + 0.25 * category + 2.0 * anchor, rel=1e-6)


def test_the_category_term_adds_the_shape_experts_own_cross_entropy():
    fused, _, target = pl_inputs()
    category_logits = torch.tensor([[[2.0, 0.0], [0.0, 0.0]]])
    shape_logits = torch.tensor([[[0.0, 1.0], [5.0, 0.0]]])
    category_target = torch.tensor([[0, -100]])
    config = W2R2LossConfig(lambda_pl=0.0, category_weight=0.5)
    total, terms = w2r2_objective(
        fused, None, target, config, None, category_logits, category_target, shape_category_logits=shape_logits
    )
    category = -log_softmax([2.0, 0.0], 0) - log_softmax([0.0, 1.0], 0)
    assert terms["category"].item() == pytest.approx(category, rel=1e-6)
    assert total.item() == pytest.approx(-log_softmax([3.0, 0.0], 0) + 0.5 * category, rel=1e-6)


def test_the_category_term_adds_the_colour_heads_pixel_term_cross_entropy():
    fused, _, target = pl_inputs()
    colour_logits = torch.tensor([[[1.0, 0.0, 0.0], [0.0, 0.0, 0.0]]])
    pixel_logits = torch.tensor([[[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]])
    colour_target = torch.tensor([[1, -100]])
    config = W2R2LossConfig(lambda_pl=0.0, category_weight=1.0)
    _, terms = w2r2_objective(
        fused, None, target, config, colour_logits=colour_logits, colour_target=colour_target,
        pixel_colour_logits=pixel_logits,
    )
    colour = -log_softmax([1.0, 0.0, 0.0], 1) - log_softmax([0.0, 2.0, 0.0], 1)
    assert terms["category"].item() == pytest.approx(colour, rel=1e-6)


def test_baseline_needs_no_pseudo_pass_and_w2r2_does():
    fused, _, target = pl_inputs()
    total, terms = w2r2_objective(fused, None, target, W2R2LossConfig(lambda_pl=0.0, category_weight=0.0))
    assert total.item() == pytest.approx(-log_softmax([3.0, 0.0], 0), rel=1e-6)
    assert terms["pseudo_label"].item() == 0.0 and "ce_2d" not in terms
    with pytest.raises(ValueError, match="logits_2d"):
        w2r2_objective(fused, None, target, W2R2LossConfig(lambda_pl=0.5))
    with pytest.raises(ValueError, match="form"):
        W2R2LossConfig(form="squared")


def test_pl_gradient_to_fused_can_be_switched_off():
    fused, two_d, target = pl_inputs()
    config = W2R2LossConfig(lambda_pl=1.0, margin=1.0, category_weight=0.0, pl_gradient_to_fused=False)
    total, _ = w2r2_objective(fused, two_d, target, config)
    total.backward()
    p_fused = math.exp(3.0) / (math.exp(3.0) + 1.0)
    # Only the alignment term's gradient reaches the fused logits.
    torch.testing.assert_close(fused.grad, torch.tensor([[p_fused - 1.0, 1.0 - p_fused]]))
    torch.testing.assert_close(two_d.grad, torch.tensor([[0.5, -0.5]]))
