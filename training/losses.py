"""The W2R2 dual objective (W2R2.md, "Alignment Loss" and "Pseudo-Label Loss").

Logits are ``GroundingOutput.logits`` (B, N + 1): proposal scores cos/tau and,
in the last column, "no target". A target is a column index: the ground-truth
proposal, or N when the query's object is not among the proposals.

- ``alignment_loss``: cross-entropy of the fused pass over the proposals (the
  InfoNCE form: the target proposal is the positive, every other proposal and
  "no target" a negative). "Adapted" = optional label smoothing that moves a
  fraction of the target mass onto distractors *of the target's class*, off by
  default.
- ``pseudo_label_loss``: a margin hinge on the 2D-dominant pseudo-output
  (``ablate_3d=True``), ``mean(max(0, m - (CE_2D - CE_fused)))`` ("relative",
  default) or ``mean(max(0, m - CE_2D))`` ("absolute").
- ``w2r2_objective``: ``L_align + lambda_pl * L_PL`` plus the auxiliary terms
  ``category_weight * L_cat + anchor_weight * L_anchor + text_category_weight * L_text
  + text_relation_weight * L_relation``;
  ``lambda_pl = 0`` is the baseline.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

PSEUDO_LABEL_FORMS = ("relative", "absolute")


def per_sample_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CE of the target column for each sample, (B,): the quantity the hinge compares between passes."""
    return F.cross_entropy(logits, target, reduction="none")


def alignment_loss(
    logits: torch.Tensor,
    target: torch.Tensor,
    same_class_mask: torch.Tensor | None = None,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Mean cross-entropy of the fused logits (B, N + 1) against ``target`` (B,).

    With ``label_smoothing`` = eps > 0 and a ``same_class_mask`` (B, N + 1, True on
    the distractors that share the target's class), the target keeps 1 - eps and
    eps is spread evenly over those distractors; a sample without same-class
    distractors keeps a one-hot target. Why only same-class distractors: they are
    exactly the candidates the 2D "What" evidence cannot tell apart, so this is
    the one place a softer target is plausible (W2R2.md allows it, off by default:
    it also weakens the pressure to tell instances apart).
    """
    if label_smoothing == 0.0:
        return F.cross_entropy(logits, target)
    if same_class_mask is None:
        raise ValueError("alignment_loss: label_smoothing > 0 needs same_class_mask")
    if not 0.0 <= label_smoothing < 1.0:
        raise ValueError(f"alignment_loss: label_smoothing must be in [0, 1), got {label_smoothing}")
    one_hot = F.one_hot(target, logits.shape[-1]).to(logits.dtype)
    distractors = same_class_mask.to(logits.dtype) * (1.0 - one_hot)
    count = distractors.sum(-1, keepdim=True)
    eps = torch.where(count > 0, torch.full_like(count, label_smoothing), torch.zeros_like(count))
    soft_target = one_hot * (1.0 - eps) + distractors * eps / count.clamp_min(1.0)
    return -(soft_target * F.log_softmax(logits, dim=-1)).sum(-1).mean()


def pseudo_label_loss(
    logits_fused: torch.Tensor,
    logits_2d: torch.Tensor,
    target: torch.Tensor,
    margin: float,
    form: str = "relative",
) -> torch.Tensor:
    """Margin hinge that fires when the 2D-only pass is too good at the target.

    relative: ``mean(max(0, m - (CE_2D - CE_fused)))``: the fused pass must beat
    the 2D-only pass on the target by ``m`` nats, so the difference must come from
    3D. Gradient reaches both logits while the hinge is active (raising CE_2D,
    lowering CE_fused) and is exactly zero once CE_2D - CE_fused > m.
    absolute: ``mean(max(0, m - CE_2D))``: any 2D-only pass more confident than
    ``exp(-m)`` on the target is penalised; ``logits_fused`` is not used.
    """
    ce_2d = per_sample_cross_entropy(logits_2d, target)
    if form == "relative":
        gap = ce_2d - per_sample_cross_entropy(logits_fused, target)
    elif form == "absolute":
        gap = ce_2d
    else:
        raise ValueError(f"pseudo_label_loss: form must be one of {PSEUDO_LABEL_FORMS}, got {form!r}")
    return torch.relu(margin - gap).mean()


def masked_cross_entropy(logits: torch.Tensor, target: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Mean CE of logits (..., C) vs target (...) over the entries not equal to ``ignore_index``; 0 (with a
    gradient path, so the graph stays connected) when every entry is ignored."""
    flat_target = target.reshape(-1)
    if not bool((flat_target != ignore_index).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), flat_target, ignore_index=ignore_index)


def category_loss(category_logits: torch.Tensor, category_target: torch.Tensor) -> torch.Tensor:
    """Mean CE of per-object categories (B, N, C) vs (B, N), -100 = ignore (padding, unmatched proposals); 0 if none."""
    return masked_cross_entropy(category_logits, category_target, -100)


def anchor_loss(anchor_logits: torch.Tensor, anchor_target: torch.Tensor) -> torch.Tensor:
    """Mean CE of the RelationHead's anchor pointers (B, A, N) vs the anchor proposals (B, A), -1 = none; 0 if none."""
    return masked_cross_entropy(anchor_logits, anchor_target, -1)


def text_category_loss(
    target_category_logits: torch.Tensor,
    target_category: torch.Tensor,
    anchor_category_logits: torch.Tensor,
    anchor_category: torch.Tensor,
) -> torch.Tensor:
    """Mean CE of the categories the text names, target (B, C) vs (B,) and anchors (B, A, C) vs (B, A), over
    every labelled entry (-1 = unknown); 0 if none. As ScanRefer's language classification loss."""
    logits = torch.cat([target_category_logits[:, None], anchor_category_logits], dim=1)
    target = torch.cat([target_category[:, None], anchor_category], dim=1)
    return masked_cross_entropy(logits, target, -1)


def text_relation_loss(relation_logits: torch.Tensor, relation: torch.Tensor) -> torch.Tensor:
    """Mean CE of the relation the text asks for, (B, R) vs (B,), -1 = unlabelled; 0 if none."""
    return masked_cross_entropy(relation_logits, relation, -1)


@dataclass
class W2R2LossConfig:
    """Weights and switches of the W2R2 objective; ``lambda_pl = 0`` is the baseline (no pseudo pass needed).

    ``lambda_pl`` = 0.1 and ``margin`` = 0.5 nat were chosen by dev-set runs
    (docs/TRAINING.md, "Choices"): with 0.5 / 1.0 the hinge, active from the first
    step while the fused pass is still at chance, is met by driving the 2D-only pass
    below chance, which dragged the shared weights (and the fused accuracy) with it.
    ``category_weight``: the shipped recipe (configs/train_default.yaml) uses 1.0, since
    the auxiliary category loss is what trains the "What" of every object token and
    feeds the grounding head's category match. ``pl_gradient_to_fused``: whether
    L_PL's gradient also flows into the fused pass (W2R2.md: through both passes;
    False detaches CE_fused so L_PL only pushes the 2D-only pass down).
    ``anchor_weight``: the auxiliary loss on the RelationHead's anchor pointers, where the
    data names anchors (synthetic relations do; ScanRefer JSON does not, and the term is
    then 0). Auxiliary, like the category loss: both passes of W2R2 and the baseline share it.
    ``text_category_weight``: the auxiliary loss on the categories the text names (target and
    anchors, ``text_category_loss``). Without it the text side learned the anchor's category
    from the anchor loss alone, through the objects' still-uncertain category estimates:
    after 500 steps it named the right anchor category for 43% of dev queries, while a
    direct loss gets there within 100 steps (docs/TRAINING.md, "Choices").
    ``text_relation_weight``: the auxiliary loss on which relation the text asks for
    (``text_relation_loss``; where the data labels relations), for the same reason on the
    relation side: without it the text vectors of "largest" and "smallest", "front" and "back"
    stayed alike (docs/TRAINING.md, "Relations: the third model").
    """

    lambda_pl: float = 0.1
    margin: float = 0.5
    form: str = "relative"
    label_smoothing: float = 0.0
    category_weight: float = 0.1
    pl_gradient_to_fused: bool = True
    anchor_weight: float = 1.0
    text_category_weight: float = 1.0
    text_relation_weight: float = 1.0

    def __post_init__(self) -> None:
        if self.form not in PSEUDO_LABEL_FORMS:
            raise ValueError(f"W2R2LossConfig.form: must be one of {PSEUDO_LABEL_FORMS}, got {self.form!r}")
        weights = (self.category_weight, self.anchor_weight, self.text_category_weight, self.text_relation_weight)
        if min(self.lambda_pl, *weights) < 0:
            raise ValueError("W2R2LossConfig: lambda_pl and the auxiliary weights must be >= 0")

    @property
    def needs_pseudo_pass(self) -> bool:
        return self.lambda_pl > 0


def w2r2_objective(
    logits_fused: torch.Tensor,
    logits_2d: torch.Tensor | None,
    target: torch.Tensor,
    config: W2R2LossConfig,
    same_class_mask: torch.Tensor | None = None,
    category_logits: torch.Tensor | None = None,
    category_target: torch.Tensor | None = None,
    anchor_logits: torch.Tensor | None = None,
    anchor_target: torch.Tensor | None = None,
    text_categories: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    colour_logits: torch.Tensor | None = None,
    colour_target: torch.Tensor | None = None,
    text_colours: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor] | None = None,
    text_relation: tuple[torch.Tensor, torch.Tensor] | None = None,
    shape_category_logits: torch.Tensor | None = None,
    pixel_colour_logits: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Total loss and its named terms.

    Terms: ``align``, ``pseudo_label`` (0 when lambda_pl = 0), ``category`` (0 without
    category inputs), ``anchor`` (0 without anchor inputs), ``text_category`` (0 without
    ``text_categories``: the four arguments of ``text_category_loss``), and
    colours where the model has them: ``category`` adds the objects' colour CE
    (``colour_logits`` vs ``colour_target``, -100 = ignore) and the CE of the category head's
    box-shape term alone (``shape_category_logits`` vs ``category_target``) and of the colour head's pixel
    term alone (``pixel_colour_logits`` vs ``colour_target``), and ``text_category`` the
    text's colour CE (``text_colours``, same layout as ``text_categories``); ``text_relation``
    (0 without ``text_relation``: relation logits and labels, ``text_relation_loss``); and detached diagnostics ``ce_fused`` and ``ce_2d`` (mean
    per-sample CE of each pass; ``ce_2d`` only when ``logits_2d`` is given).
    ``logits_2d`` (the ``ablate_3d=True`` pass) is required when lambda_pl > 0.
    """
    zero = logits_fused.new_zeros(())
    align = alignment_loss(logits_fused, target, same_class_mask, config.label_smoothing)
    terms: dict[str, torch.Tensor] = {"align": align}
    pseudo = zero
    if config.needs_pseudo_pass:
        if logits_2d is None:
            raise ValueError("w2r2_objective: lambda_pl > 0 needs logits_2d (the ablate_3d pass)")
        fused_for_pl = logits_fused if config.pl_gradient_to_fused else logits_fused.detach()
        pseudo = pseudo_label_loss(fused_for_pl, logits_2d, target, config.margin, config.form)
    terms["pseudo_label"] = pseudo
    category = zero
    if category_logits is not None and category_target is not None and config.category_weight > 0:
        category = category_loss(category_logits, category_target)
        if shape_category_logits is not None:
            category = category + category_loss(shape_category_logits, category_target)
    if colour_logits is not None and colour_target is not None and config.category_weight > 0:
        category = category + category_loss(colour_logits, colour_target)
        if pixel_colour_logits is not None:
            category = category + category_loss(pixel_colour_logits, colour_target)
    terms["category"] = category
    anchor = zero
    if anchor_logits is not None and anchor_target is not None and config.anchor_weight > 0:
        anchor = anchor_loss(anchor_logits, anchor_target)
    terms["anchor"] = anchor
    text_category = zero
    if text_categories is not None and config.text_category_weight > 0:
        text_category = text_category_loss(*text_categories)
    if text_colours is not None and config.text_category_weight > 0:
        text_category = text_category + text_category_loss(*text_colours)
    terms["text_category"] = text_category
    relation = zero
    if text_relation is not None and config.text_relation_weight > 0:
        relation = text_relation_loss(*text_relation)
    terms["text_relation"] = relation
    with torch.no_grad():
        terms["ce_fused"] = per_sample_cross_entropy(logits_fused, target).mean()
        if logits_2d is not None:
            terms["ce_2d"] = per_sample_cross_entropy(logits_2d, target).mean()
    total = (
        align
        + config.lambda_pl * pseudo
        + config.category_weight * category
        + config.anchor_weight * anchor
        + config.text_category_weight * text_category
        + config.text_relation_weight * relation
    )
    terms["total"] = total
    return total, terms
