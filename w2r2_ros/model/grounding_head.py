"""Grounding and category heads on the fused hidden states (W2R2.md, "Fusion")."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.geometry_encoding import SHAPE_FEATURES, box_shape
from w2r2_ros.model.object_colour import COLOUR_FEATURES

# Logit given to padded proposals: far below any real score (|cos| * scale <= MAX_LOGIT_SCALE),
# yet finite so that 0 * logit stays 0 in label-smoothed losses.
MASKED_LOGIT = -1.0e4


# Upper bound of the learned logit scale 1 / tau (CLIP's bound): keeps the softmax from saturating.
MAX_LOGIT_SCALE = 100.0


def object_match(
    category_logits: torch.Tensor,
    wanted_category_logits: torch.Tensor,
    colour_logits: torch.Tensor | None = None,
    wanted_colour_logits: torch.Tensor | None = None,
) -> torch.Tensor:
    """(B, Q, N) probability that object j is what query q names: P(category) x P(colour).

    P(category) = sum_c p_j(c) t_q(c), p_j the objects' category head (``category_logits`` (B, N, C)), t_q
    what the text names (``wanted_category_logits`` (B, Q, C)). P(colour) = P(not said) + sum_k p_j(k) w_q(k)
    with the objects' colour head (B, N, K) and the text's colour (B, Q, K + 1), whose last class "no
    colour said" every object matches; 1 when the model has no colours (``ModelConfig.colours`` empty).
    Used by ``GroundingHead`` for the target (Q = 1) and by ``RelationHead`` for each anchor pointer.
    """
    match = torch.einsum("bnc,bqc->bqn", category_logits.softmax(dim=-1), wanted_category_logits.softmax(dim=-1))
    if colour_logits is None or wanted_colour_logits is None:
        return match
    wanted = wanted_colour_logits.softmax(dim=-1)
    said = torch.einsum("bnk,bqk->bqn", colour_logits.softmax(dim=-1), wanted[..., :-1])
    return match * (said + wanted[..., -1:])


class GroundingHead(nn.Module):
    """Score of proposal i = (cos(q, k_i) + match_i) / 2 / tau + relation_i; plus a learned "no target" logit from the GRD state.

    q is a projection of the grounding token's hidden state, k_i of object token
    i's. match_i = sum_c p_i(c) t(c) in [0, 1] is the probability that object i
    has the category the query asks for: p_i is the object's ``CategoryHead``
    distribution (trained by the auxiliary category loss), t a category
    distribution read from the GRD token's pooled text (trained by the auxiliary
    text-category loss where the data gives the target's category). It is the "What" half of grounding made
    explicit, so the cosine is left to tell same-category instances apart
    (docs/MODEL.md; on the dev set it learned a little faster early and kept
    the 3D-ablated accuracy higher, docs/TRAINING.md "Choices").
    relation_i is the ``RelationHead`` score (spatial relations to anchors).
    Without it scores stay within [-1/tau, 1/tau]. tau is learned as in CLIP: it starts at
    ``ModelConfig.temperature`` and 1/tau is capped at ``MAX_LOGIT_SCALE``.
    The logits (B, N + 1) put "no target" in the last column, so one softmax
    covers "which proposal" and "none of them".
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.log_logit_scale = nn.Parameter(torch.tensor(-math.log(config.temperature)))
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.target_category = nn.Linear(config.hidden_size, len(config.categories))
        self.target_colour = nn.Linear(config.hidden_size, len(config.colours) + 1) if config.colours else None
        self.no_target = nn.Linear(config.hidden_size, 1)

    def forward(
        self,
        grounding_state: torch.Tensor,
        object_states: torch.Tensor,
        object_mask: torch.Tensor,
        category_logits: torch.Tensor,
        relation_scores: torch.Tensor,
        grounding_text: torch.Tensor,
        colour_logits: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """-> (logits (B, N + 1), unit query (B, D), unit keys (B, N, D), target category logits (B, C),
        target colour logits (B, K + 1) or None without colours).

        ``category_logits`` (B, N, C); ``relation_scores`` (B, N) from ``RelationHead``, added to the
        proposal scores; ``grounding_text`` (B, D) the GRD token's pooled text (``TextEncoder``), from
        which the target's category (and colour) is read: which category the query names is a question of
        language. ``colour_logits`` (B, N, K): the objects' colour head.
        """
        query = F.normalize(self.query(grounding_state), dim=-1)
        keys = F.normalize(self.key(object_states), dim=-1)
        target_category = self.target_category(grounding_text)
        target_colour = None if self.target_colour is None else self.target_colour(grounding_text)
        match = object_match(
            category_logits,
            target_category[:, None],
            colour_logits,
            None if target_colour is None else target_colour[:, None],
        )[:, 0]
        scale = self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        scores = (torch.einsum("bd,bnd->bn", query, keys) + match) * (0.5 * scale) + relation_scores
        scores = scores.masked_fill(~object_mask, MASKED_LOGIT)
        logits = torch.cat([scores, self.no_target(grounding_state)], dim=-1)
        return logits, query, keys, target_category, target_colour


class CategoryHead(nn.Module):
    """Per-object category logits: the label of the answer, and an auxiliary training signal.

    A linear map of the fused object state plus one of the object token as it entered the fusion
    (pooled 2D features + box encoding). The second is a short path from appearance and box size to
    the category: with the fused state alone, val objects were classified right 78% of the time after
    1750 steps (83% on train objects: under-fitted, not over-fitted), while an MLP on box size and
    height alone reaches 92% (docs/TRAINING.md, "Choices").

    With ``shape`` (``ModelConfig.category_shape``, for the category head, not the colour head) an
    MLP of the proposal box's shape (``box_shape``: log size, footprint, heights) is added. Why: the
    third model's category head, with the two linear maps only, was right for 85% of val proposals
    while such an MLP alone, trained on the same proposals, was right for 93%: the box encoding in
    the object token mixes shape with horizontal position, and a linear read-out of it does not
    recover the shape (docs/TRAINING.md, "Object categories: the fourth model"). Trained only through the
    sum, the term was a weak partner of the two linear maps, which fit the training objects and not the val
    ones (95 % / 88 %); so the trainer also gives the shape term's logits alone their own cross-entropy
    (``GroundingOutput.shape_category_logits``, the ``category`` loss term), which makes it an expert that
    generalises on its own. Its input is standardised by the training proposals' statistics
    (``ModelConfig.shape_mean``/``shape_std``): an MLP trained alone at this model's pace named 87 % of val
    proposals with raw features and 90 % with standardised ones. The box is 3D input, so the 3D-ablated pass
    leaves this term out.

    With ``pixels`` (``ModelConfig.colour_pixels``, for the colour head) an MLP of the proposal's own pixel
    colour (``object_colour_features``) is added the same way, with its own cross-entropy. Why: the fourth
    model's colour head, reading pooled patch features in which a small object's pixels are mixed with the
    wall and floor around it, named the colour of 98 % of training proposals but 91 % of val ones, and in 48
    of its 140 wrong val answers to descriptions that name a colour it had the target's colour wrong
    (docs/TRAINING.md, "Colours: the fifth model"). Colour is "What": the 3D-ablated pass keeps this term (the depth samples only pick which pixels
    belong to the proposal, as box pooling does for the object tokens).
    """

    def __init__(self, config: ModelConfig, classes: int | None = None, shape: bool = False, pixels: bool = False) -> None:
        super().__init__()
        classes = len(config.categories) if classes is None else classes
        self.classify = nn.Linear(config.hidden_size, classes)
        self.classify_token = nn.Linear(config.hidden_size, classes)
        self.classify_shape = _term_mlp(SHAPE_FEATURES, config.hidden_size, classes) if shape else None
        self.classify_pixels = _term_mlp(COLOUR_FEATURES, config.hidden_size, classes) if pixels else None
        if shape:
            mean = config.shape_mean or (0.0,) * SHAPE_FEATURES
            std = config.shape_std or (1.0,) * SHAPE_FEATURES
            if len(mean) != SHAPE_FEATURES:
                raise ValueError(f"CategoryHead: shape_mean/shape_std need {SHAPE_FEATURES} values, got {len(mean)}")
            # From the config (JSON), not the weights: buffers that are not saved in model.safetensors.
            self.register_buffer("shape_mean", torch.tensor(mean), persistent=False)
            self.register_buffer("shape_std", torch.tensor(std), persistent=False)

    def shape_logits(self, boxes: torch.Tensor) -> torch.Tensor | None:
        """(B, N, classes) logits of the shape term alone for boxes (B, N, 6), its input standardised by
        ``ModelConfig.shape_mean``/``shape_std``; None without the term."""
        if self.classify_shape is None:
            return None
        return self.classify_shape((box_shape(boxes) - self.shape_mean) / self.shape_std)

    def term_mlps(self) -> list[nn.Module]:
        """The term MLPs this head has (shape, pixels): the trainer gives them their own learning rate."""
        return [mlp for mlp in (self.classify_shape, self.classify_pixels) if mlp is not None]

    def pixel_logits(self, colour_features: torch.Tensor, seen: torch.Tensor) -> torch.Tensor | None:
        """(B, N, classes) logits of the pixel-colour term alone for ``object_colour_features`` output, 0 for
        proposals no frame shows; None without the term."""
        if self.classify_pixels is None:
            return None
        return self.classify_pixels(colour_features) * seen[..., None].to(colour_features.dtype)

    def forward(
        self, object_states: torch.Tensor, object_tokens: torch.Tensor, term_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, N, classes) logits: the two linear maps plus ``term_logits`` (``shape_logits`` or ``pixel_logits``)
        when given; the category head's 3D-ablated pass gives none."""
        logits = self.classify(object_states) + self.classify_token(object_tokens)
        return logits if term_logits is None else logits + term_logits


def _term_mlp(features: int, hidden: int, classes: int) -> nn.Sequential:
    """The MLP of a ``CategoryHead`` term: a few hand-made features -> class logits."""
    return nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Linear(hidden, classes))
