"""RelationHead: a text-conditioned spatial score of each proposal, relative to soft-selected anchors.

A relation ("the chair nearest to the table", "the leftmost lamp") is a comparison across candidates of a
geometric quantity measured from an anchor, so the head makes those quantities explicit rather than leaving
them to the fusion (which learned colours but not relations; docs/TRAINING.md, "Choices"):

1. ``relation_anchors`` pointers (one per ANC query token; two cover "between A and B") pick anchor objects by
   attention over the fused object states times the match of each object with what the pointer's pooled text
   names (``NameMatch``); an anchor's box is the attention-weighted mean of the proposal boxes. Where the data
   names anchors the trainer supervises the pointers (``W2R2LossConfig.anchor_weight``).
2. Each proposal gets a geometry vector: its own box (centre, log size) and, per anchor, the centre offset, the
   floor distance and the anchor's log size. All of it is in the viewer frame (``centred_geometry``): x forward,
   y left, so "left of" is the viewer's left whatever the map's yaw.
3. The score is an MLP embedding of that vector (Fourier features) dotted with a vector read from the GRD
   token's pooled text, plus (``ModelConfig.relation_linear``) a linear read-out of the raw vector with weights
   from the same text: most relations are a linear ranking of it ("smallest": minus the log sizes), which the
   text can then select exactly (docs/TRAINING.md, "Relations: the third model"). The score is added to the
   grounding head's, so the softmax over proposals does the arg-min/arg-max the relation asks for.
4. With ``ModelConfig.relation_ranks`` the linear read-out also gets each proposal's rank among the
   *candidates*, the proposals that are what the query names (their probability, ``NameMatch.probability``):
   soft counts of candidates above and below it in each ``RANKED`` quantity, and bumps at counts 1, 2, 3. Why:
   with the true anchors and only proposals of the target's class to choose from, the absolute geometry read
   linearly picked the right one for 76-85 % of "farthest" / "nearest" descriptions and 37-40 % of ordinals,
   where the rule on the same boxes picks 94 % (dev split, 2026-12-05, docs/TRAINING.md): a relation compares
   candidates, and a count ("no candidate nearer the table"; "one candidate further left" for "the second from
   the left") says that at the same scale in every room.
5. Where the data labels each description's relation (``ModelConfig.relations``) a linear classifier on the
   same pooled text learns to name it (``classify_relation``): it keeps the text vectors of opposite relations
   ("largest"/"smallest") apart.

Every input of step 2 is 3D, so the 3D-ablated pass (W2R2's 2D-dominant pseudo-output) zeroes the geometry
vector: the score is then the same for every proposal and says nothing.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.geometry_encoding import FourierFeatures, log_size
from w2r2_ros.model.grounding_head import NameMatch

# Own box: centre (3) + log size (3); per anchor: centre offset (3) + floor distance (1) + anchor log size (3).
OWN_GEOMETRY, ANCHOR_GEOMETRY = 6, 7
# Quantities ranked among the candidates: distance ahead of the viewer (x), to its left (y), log volume, log
# height; per anchor the floor distance to it; and the sum of those distances ("between" two anchors).
RANKED = ("ahead", "left", "volume", "height")
# Ranks: soft counts of candidates above and below, and Gaussian bumps (width RANK_BUMP_WIDTH) at these counts.
RANK_BUMPS = (1.0, 2.0, 3.0)
RANK_BUMP_WIDTH = 0.35


class RelationHead(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        d = config.hidden_size
        self.anchors = config.relation_anchors
        self.anchor_query = nn.Linear(d, d)
        self.anchor_key = nn.Linear(d, d)
        self.anchor_category = nn.Linear(d, NameMatch.feature_size(config, len(config.categories)))
        colours = NameMatch.feature_size(config, len(config.colours) + 1)
        self.anchor_colour = nn.Linear(d, colours) if config.colours else None
        self.fourier = FourierFeatures(config.fourier_bands, config.min_wavelength_m, config.max_wavelength_m)
        dims = OWN_GEOMETRY + ANCHOR_GEOMETRY * self.anchors
        self.embed = nn.Sequential(nn.Linear(self.fourier.output_size(dims), d), nn.GELU(), nn.Linear(d, d))
        self.select = nn.Linear(d, d)
        self.rank_softness = config.relation_rank_softness
        # Rank features: per ranked quantity (RANKED, each anchor's distance, their sum) two counts and their bumps.
        self.rank_features = (len(RANKED) + self.anchors + 1) * 2 * (1 + len(RANK_BUMPS)) if config.relation_ranks else 0
        self.linear = nn.Linear(d, dims + self.rank_features) if config.relation_linear else None
        self.relation_classifier = nn.Linear(d, len(config.relations)) if config.relations else None
        self.scale = 1.0 / math.sqrt(d)

    def anchor_logits(
        self,
        anchor_states: torch.Tensor,
        anchor_text: torch.Tensor,
        object_states: torch.Tensor,
        names: NameMatch,
        object_category: torch.Tensor,
        object_mask: torch.Tensor,
        object_colour: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """-> (pointer logits (B, A, N), anchor category logits (B, A, C), anchor colour logits (B, A, K + 1)
        or None without colours). ``object_category`` (B, N, F): the objects' category features, ``object_colour``
        (B, N, K) their colour logits (``NameMatch``).

        Pointer logits: query-key attention of each fused ANC state over the objects, plus the
        log-probability that object j has the category (and the colour, ``NameMatch.match``) that
        the pointer's pooled text asks for.

        As a product of experts, P(anchor = j) ~ exp(attention_j) * P(category of j = wanted): the
        category factor is learned early (the category loss trains the objects' side, and the anchor
        loss then acts on the text side like a plain classification of the anchor's category), and
        the attention is left to tell same-category instances apart ("the red table").
        """
        attention = torch.einsum("bad,bnd->ban", self.anchor_query(anchor_states), self.anchor_key(object_states))
        anchor_category = self.anchor_category(anchor_text)
        anchor_colour = names.colour_logits(None if self.anchor_colour is None else self.anchor_colour(anchor_text), True)
        match = names.match(object_category, anchor_category, object_colour, anchor_colour)
        logits = attention * self.scale + torch.log(match + 1e-6)
        return logits.masked_fill(~object_mask[:, None, :], -1.0e4), names.category_logits(anchor_category), anchor_colour

    def classify_relation(self, query_text: torch.Tensor) -> torch.Tensor | None:
        """(B, R) logits of which of ``ModelConfig.relations`` the text asks for, read from the GRD token's
        pooled text (``query_text`` (B, 1 + A, D)); None when the model has no relation list. An auxiliary
        output: the score does not use it, the loss on it shapes the text vector the score reads."""
        if self.relation_classifier is None:
            return None
        return self.relation_classifier(query_text[:, 0])

    def geometry(self, boxes: torch.Tensor, anchor_weights: torch.Tensor) -> torch.Tensor:
        """(B, N, OWN + A * ANCHOR) geometry of every proposal relative to the soft anchors (B, A, N)."""
        centres = boxes[..., :3]
        parts = [centres, log_size(boxes)]
        anchor_boxes = torch.einsum("ban,bnk->bak", anchor_weights, boxes)  # (B, A, 6) expected anchor box
        for a in range(self.anchors):
            offset = centres - anchor_boxes[:, a, None, :3]
            floor = offset[..., :2].norm(dim=-1, keepdim=True)
            parts += [offset, floor, log_size(anchor_boxes[:, a, None]).expand_as(offset)]
        return torch.cat(parts, dim=-1)

    def ranks(self, geometry: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """(B, N, ``rank_features``) each proposal's ranks among the candidates (weights (B, N), 0 for padding) in every
        ranked quantity of ``geometry`` (B, N, OWN + A * ANCHOR): the weighted counts of other candidates above and
        below it (a candidate ``relation_rank_softness`` above counts 0.73), and bumps at counts 1, 2, 3 of each."""
        distances = geometry[..., OWN_GEOMETRY + 3 :: ANCHOR_GEOMETRY]  # (B, N, A) floor distance to each anchor
        values = torch.cat([
            geometry[..., :2], geometry[..., 3:6].sum(dim=-1, keepdim=True), geometry[..., 5:6],
            distances, distances.sum(dim=-1, keepdim=True),
        ], dim=-1)
        difference = (values[:, None, :, :] - values[:, :, None, :]) / self.rank_softness  # (B, i, j, R): v_j - v_i
        own = 0.5 * candidates[..., None]  # sigmoid(0) of a proposal against itself
        above = torch.einsum("bijr,bj->bir", torch.sigmoid(difference), candidates) - own
        below = torch.einsum("bijr,bj->bir", torch.sigmoid(-difference), candidates) - own
        counts = torch.stack([above, below], dim=-1)[..., None]  # (B, N, R, 2, 1)
        bumps = torch.exp(-0.5 * ((counts - counts.new_tensor(RANK_BUMPS)) / RANK_BUMP_WIDTH) ** 2)
        return torch.cat([counts, bumps], dim=-1).flatten(2)

    def forward(
        self,
        query_text: torch.Tensor,
        anchor_states: torch.Tensor,
        object_states: torch.Tensor,
        names: NameMatch,
        object_category: torch.Tensor,
        boxes: torch.Tensor,
        object_mask: torch.Tensor,
        ablate_3d: bool = False,
        object_colour: torch.Tensor | None = None,
        candidates: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """-> (relation scores (B, N), anchor pointer logits (B, A, N), anchor category logits (B, A, C),
        anchor colour logits (B, A, K + 1) or None).

        ``query_text`` (B, 1 + A, D) is the ``TextEncoder``'s pooled text of the GRD and ANC
        tokens: which relation and which anchor categories are questions of language alone.
        ``anchor_states`` (B, A, D) are the fused ANC tokens, which tell instances apart by
        what the scene shows (for "the red table"). ``object_category`` (B, N, F) and ``object_colour``
        (B, N, K) are the objects' category features and colour logits (``NameMatch``), ``boxes`` (B, N, 6)
        as the model reads them (``centred_geometry``: viewer frame); ``candidates`` (B, N) the probability that
        each proposal is what the query names (``relation_ranks``; None: every real proposal counts fully).
        """
        anchor_logits, anchor_category, anchor_colour = self.anchor_logits(
            anchor_states, query_text[:, 1:], object_states, names, object_category, object_mask, object_colour
        )
        geometry = self.geometry(boxes, anchor_logits.softmax(dim=-1))
        if ablate_3d:
            geometry = torch.zeros_like(geometry)
        embedded = self.embed(self.fourier(geometry))
        scores = torch.einsum("bd,bnd->bn", self.select(query_text[:, 0]), embedded) * self.scale
        if self.linear is not None:
            read = geometry
            if self.rank_features and ablate_3d:
                read = torch.cat([geometry, geometry.new_zeros(*geometry.shape[:2], self.rank_features)], dim=-1)
            elif self.rank_features:
                weights = object_mask.to(geometry.dtype) if candidates is None else candidates * object_mask
                read = torch.cat([geometry, self.ranks(geometry, weights)], dim=-1)
            scores = scores + torch.einsum("bk,bnk->bn", self.linear(query_text[:, 0]), read)
        return scores, anchor_logits, anchor_category, anchor_colour
