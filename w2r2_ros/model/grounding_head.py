"""Grounding and category heads on the fused hidden states (W2R2.md, "Fusion")."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.geometry_encoding import SHAPE_FEATURES, box_shape
from w2r2_ros.model.object_colour import COLOUR_FEATURES
from w2r2_ros.model.pretrained_text import TEXT_STATE_SIZE

# Logit given to padded proposals: far below any real score (|cos| * scale <= MAX_LOGIT_SCALE),
# yet finite so that 0 * logit stays 0 in label-smoothed losses.
MASKED_LOGIT = -1.0e4


# Upper bound of the learned logit scale 1 / tau (CLIP's bound): keeps the softmax from saturating.
MAX_LOGIT_SCALE = 100.0


class NameScorer(nn.Module):
    """Logits of features against names in the pretrained text space (CLIP-style): scale * cos(f, A n_c).

    ``names`` (C, 384) are the unit MiniLM embeddings of the training label names (``PretrainedText.name_embeddings``,
    saved with the weights so a checkpoint answers without re-encoding them); A is a learned map of that space,
    shared by every name, so a name never seen in training is scored through the same function
    (``score``). ``extra`` learned vectors stand for classes that have no name ("no colour said").
    """

    def __init__(self, names: int, temperature: float, extra: int = 0) -> None:
        super().__init__()
        self.register_buffer("names", torch.zeros(names, TEXT_STATE_SIZE))
        self.project = nn.Linear(TEXT_STATE_SIZE, TEXT_STATE_SIZE)
        nn.init.eye_(self.project.weight)
        nn.init.zeros_(self.project.bias)
        self.extra = nn.Parameter(torch.randn(extra, TEXT_STATE_SIZE) * 0.02) if extra else None
        self.log_logit_scale = nn.Parameter(torch.tensor(-math.log(temperature)))

    def name_vectors(self, names: torch.Tensor) -> torch.Tensor:
        """Unit vectors (C, 384) that features are compared with, of name embeddings (C, 384)."""
        return F.normalize(self.project(names.to(self.project.weight.dtype)), dim=-1)

    def score(self, features: torch.Tensor, names: torch.Tensor, with_extra: bool = False) -> torch.Tensor:
        """(..., C [+ extra]) logits of features (..., 384) against name embeddings (C, 384)."""
        vectors = self.name_vectors(names)
        if with_extra and self.extra is not None:
            vectors = torch.cat([vectors, F.normalize(self.extra, dim=-1)])
        return self._logits(features, vectors)

    def snap(self, features: torch.Tensor) -> torch.Tensor:
        """(..., 384) the mixture of the training names' vectors under the softmax of ``features``' logits
        against them (``NameMatch.snapped`` says why)."""
        vectors = self.name_vectors(self.names)
        return self._logits(features, vectors).softmax(dim=-1) @ vectors

    def _logits(self, features: torch.Tensor, vectors: torch.Tensor) -> torch.Tensor:
        scale = self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        return F.normalize(features, dim=-1) @ vectors.T * scale

    def forward(self, features: torch.Tensor, with_extra: bool = False) -> torch.Tensor:
        """Logits against the training names (and the extra vectors when ``with_extra``)."""
        return self.score(features, self.names, with_extra)


class NameMatch(nn.Module):
    """Which category (and colour) each object has, which ones the text asks for, and how well they match.

    Heads produce "what" features of the objects and of the text; this module turns them into logits over
    the training names and into the match of object j with what query q names (``match``). With
    ``ModelConfig.open_vocabulary`` the features live in the pretrained text space (384-d) and are scored
    against name embeddings (``NameScorer``); otherwise they are the logits of fixed classifiers (checkpoints
    written before the pretrained text encoder).
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.open = config.open_vocabulary
        self.categories = NameScorer(len(config.categories), config.temperature) if self.open else None
        self.colours = NameScorer(len(config.colours), config.temperature, extra=1) if self.open and config.colours else None
        self.snap_names = self.open and config.snap_names

    def snapped(self, wanted_category: torch.Tensor) -> torch.Tensor:
        """(..., 384) the mixture of the category names' vectors under the softmax that the name scorer (its
        learned scale) gives ``wanted_category`` (..., 384): the class the text names, drawn onto the names.

        Why, when answering: the text read-out is trained until a trained word's vector lies on its name's vector,
        while a word training never saw lands between names (its nearest name is still the right one: 227 of 250
        test queries with the unseen synonym, the shipped model). The cosine match then barely separates the right
        category from the others, and 11 of the 14 points an unseen word cost came back when the trained word's
        vector was swapped in (docs/TRAINING.md, "Issue 15, third round"). Training keeps the raw vector: the
        shipped weights were trained that way, and the category loss already pulls it onto its name.
        """
        return self.categories.snap(wanted_category)

    @staticmethod
    def feature_size(config: ModelConfig, classes: int) -> int:
        """Size of the features a head produces for ``classes`` names: the text space's, or the class count."""
        return TEXT_STATE_SIZE if config.open_vocabulary else classes

    def category_logits(self, features: torch.Tensor | None) -> torch.Tensor | None:
        if features is None or self.categories is None:
            return features
        return self.categories(features)

    def colour_logits(self, features: torch.Tensor | None, with_none: bool = False) -> torch.Tensor | None:
        """Logits over the colour names; ``with_none`` adds the last class "no colour said" (the text's side)."""
        if features is None or self.colours is None:
            return features
        return self.colours(features, with_extra=with_none)

    def match(
        self,
        object_category: torch.Tensor,
        wanted_category: torch.Tensor,
        object_colour: torch.Tensor | None = None,
        wanted_colour: torch.Tensor | None = None,
        snap: bool = True,
    ) -> torch.Tensor:
        """(B, Q, N) how well object j is what query q names, in [0, 1]: category factor x colour factor.

        Category: open vocabulary, (1 + cos) / 2 of the object's and the text's features, both trained to point
        at their name's vector (``NameScorer``); when answering with ``ModelConfig.snap_names`` (and ``snap``) the
        text's features are first drawn onto the names (``snapped``). The raw match (``snap=False``) has no
        softmax over the training names, so a name outside them matches nothing well rather than its nearest
        training class: what "no target" reads. Fixed classes: sum_c p_j(c) t_q(c).
        Colour (logits ``object_colour`` (B, N, K), ``wanted_colour`` (B, Q, K + 1), last = not said):
        P(not said) + sum_k p_j(k) w_q(k); 1 without colours.
        """
        if self.categories is not None:
            if snap and self.snap_names and not self.training:
                wanted_category = self.snapped(wanted_category)
            objects, wanted = F.normalize(object_category, dim=-1), F.normalize(wanted_category, dim=-1)
            match = (1.0 + torch.einsum("bnd,bqd->bqn", objects, wanted)) * 0.5
        else:
            match = torch.einsum("bnc,bqc->bqn", object_category.softmax(dim=-1), wanted_category.softmax(dim=-1))
        return match * self._colour_factor(object_colour, wanted_colour)

    def probability(
        self,
        object_logits: torch.Tensor,
        wanted_logits: torch.Tensor,
        object_colour: torch.Tensor | None = None,
        wanted_colour: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(B, Q, N) the probability that object j is the category (and colour) query q names, under the
        softmax over the training names on both sides (``object_logits`` (B, N, C) and ``wanted_logits``
        (B, Q, C): ``category_logits`` of the features): sharper than ``match`` (whose open-vocabulary cosine
        gives an object of another class about 0.5), for counting the candidates a relation compares."""
        objects, wanted = object_logits.softmax(dim=-1), wanted_logits.softmax(dim=-1)
        return torch.einsum("bnc,bqc->bqn", objects, wanted) * self._colour_factor(object_colour, wanted_colour)

    @staticmethod
    def _colour_factor(object_colour: torch.Tensor | None, wanted_colour: torch.Tensor | None) -> torch.Tensor | float:
        """(B, Q, N) P(not said) + sum_k p_j(k) w_q(k); 1 without colours."""
        if object_colour is None or wanted_colour is None:
            return 1.0
        wanted = wanted_colour.softmax(dim=-1)
        said = torch.einsum("bnk,bqk->bqn", object_colour.softmax(dim=-1), wanted[..., :-1])
        return said + wanted[..., -1:]


class GroundingHead(nn.Module):
    """Score of proposal i = (cos(q, k_i) + match_i) / 2 / tau + relation_i, plus a "no target" logit.

    q and k_i are projections of the fused grounding token and of object token i (tau learned, CLIP-style,
    1/tau capped at ``MAX_LOGIT_SCALE``). match_i (``NameMatch.match``) is how well object i is the
    category and colour the query names, read from the GRD token's pooled text: the "What" made explicit,
    so the cosine is left to tell same-category instances apart. relation_i comes from ``RelationHead``.
    The "no target" logit comes from the grounding state; with an open vocabulary it also rises by
    a * (1 - max_i match_i) / 2 / tau (a learned, from 1): as much as the best object falls short of being
    what the query names, so a name that matches nothing in the scene (a missing or never-trained class) is
    answered "no target" rather than with the nearest object. Logits (B, N + 1) put it last, so one softmax
    covers "which proposal" and "none of them".
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.log_logit_scale = nn.Parameter(torch.tensor(-math.log(config.temperature)))
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.target_category = nn.Linear(config.hidden_size, NameMatch.feature_size(config, len(config.categories)))
        colours = NameMatch.feature_size(config, len(config.colours) + 1)
        self.target_colour = nn.Linear(config.hidden_size, colours) if config.colours else None
        self.no_target = nn.Linear(config.hidden_size, 1)
        self.absent = nn.Parameter(torch.ones(())) if config.open_vocabulary else None

    def read_target(self, grounding_text: torch.Tensor, names: NameMatch) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> (the target's category features (B, F), its colour logits (B, K + 1) or None without colours),
        read from the GRD token's pooled text ``grounding_text`` (B, D)."""
        colour = None if self.target_colour is None else self.target_colour(grounding_text)
        return self.target_category(grounding_text), names.colour_logits(colour, True)

    def forward(
        self,
        grounding_state: torch.Tensor,
        object_states: torch.Tensor,
        object_mask: torch.Tensor,
        names: NameMatch,
        object_category: torch.Tensor,
        relation_scores: torch.Tensor,
        target: tuple[torch.Tensor, torch.Tensor | None],
        object_colour: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> (logits (B, N + 1), unit query (B, D), unit keys (B, N, D), match (B, N)).

        ``object_category`` (B, N, F) and ``object_colour`` (B, N, K) are the objects' category features and
        colour logits (``CategoryHead`` through ``names``); ``target`` what the query names (``read_target``:
        a question of language, read from the GRD token's pooled text).
        """
        query = F.normalize(self.query(grounding_state), dim=-1)
        keys = F.normalize(self.key(object_states), dim=-1)
        target_category, target_colour = target
        match = names.match(
            object_category, target_category[:, None], object_colour, None if target_colour is None else target_colour[:, None]
        )[:, 0]
        scale = self.log_logit_scale.exp().clamp(max=MAX_LOGIT_SCALE)
        scores = (torch.einsum("bd,bnd->bn", query, keys) + match) * (0.5 * scale) + relation_scores
        scores = scores.masked_fill(~object_mask, MASKED_LOGIT)
        no_target = self.no_target(grounding_state)
        if self.absent is not None:
            if names.snap_names and not names.training:  # "no target" reads the raw match, see NameMatch.match
                match_raw = names.match(object_category, target_category[:, None], object_colour,
                                        None if target_colour is None else target_colour[:, None], snap=False)[:, 0]
            else:
                match_raw = match
            best = match_raw.masked_fill(~object_mask, 0.0).amax(dim=-1, keepdim=True) if match.shape[-1] else match.new_zeros(match.shape[0], 1)
            no_target = no_target + self.absent * (1.0 - best) * (0.5 * scale)
        logits = torch.cat([scores, no_target], dim=-1)
        return logits, query, keys, match


class CategoryHead(nn.Module):
    """Per-object category (or colour) features: the label of the answer, the "What" of the match, and an
    auxiliary training signal.

    A linear map of the fused object state plus one of the object token as it entered the fusion (a short
    path from appearance and box size to the category). Two optional term MLPs on a few hand-made features
    are added, each also trained alone by its own loss so that it stays an expert (docs/TRAINING.md):
    ``shape`` (category head) reads the box's shape (``box_shape``, standardised by
    ``ModelConfig.shape_mean``/``shape_std``): it is 3D input, so the 3D-ablated pass leaves it out;
    ``pixels`` (colour head) reads the proposal's own pixel colour (``object_colour_features``): colour is
    "What", so the 3D-ablated pass keeps it. Features are logits over the classes, or with
    ``ModelConfig.open_vocabulary`` vectors in the pretrained text space (``NameMatch``).
    """

    def __init__(self, config: ModelConfig, classes: int | None = None, shape: bool = False, pixels: bool = False) -> None:
        super().__init__()
        size = NameMatch.feature_size(config, len(config.categories) if classes is None else classes)
        self.classify = nn.Linear(config.hidden_size, size)
        self.classify_token = nn.Linear(config.hidden_size, size)
        self.classify_shape = _term_mlp(SHAPE_FEATURES, config.hidden_size, size) if shape else None
        self.classify_pixels = _term_mlp(COLOUR_FEATURES, config.hidden_size, size) if pixels else None
        if shape:
            mean = config.shape_mean or (0.0,) * SHAPE_FEATURES
            std = config.shape_std or (1.0,) * SHAPE_FEATURES
            if len(mean) != SHAPE_FEATURES:
                raise ValueError(f"CategoryHead: shape_mean/shape_std need {SHAPE_FEATURES} values, got {len(mean)}")
            # From the config (JSON), not the weights: buffers that are not saved in model.safetensors.
            self.register_buffer("shape_mean", torch.tensor(mean), persistent=False)
            self.register_buffer("shape_std", torch.tensor(std), persistent=False)

    def shape_logits(self, boxes: torch.Tensor) -> torch.Tensor | None:
        """(B, N, F) features of the shape term alone for boxes (B, N, 6); None without the term."""
        if self.classify_shape is None:
            return None
        return self.classify_shape((box_shape(boxes) - self.shape_mean) / self.shape_std)

    def term_mlps(self) -> list[nn.Module]:
        """The term MLPs this head has (shape, pixels): the trainer gives them their own learning rate."""
        return [mlp for mlp in (self.classify_shape, self.classify_pixels) if mlp is not None]

    def pixel_logits(self, colour_features: torch.Tensor, seen: torch.Tensor) -> torch.Tensor | None:
        """(B, N, F) features of the pixel-colour term alone for ``object_colour_features`` output, 0 for
        proposals no frame shows; None without the term."""
        if self.classify_pixels is None:
            return None
        return self.classify_pixels(colour_features) * seen[..., None].to(colour_features.dtype)

    def forward(
        self, object_states: torch.Tensor, object_tokens: torch.Tensor, term_logits: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, N, F) features: the two linear maps plus ``term_logits`` (``shape_logits`` or ``pixel_logits``) when given."""
        logits = self.classify(object_states) + self.classify_token(object_tokens)
        return logits if term_logits is None else logits + term_logits


def _term_mlp(features: int, hidden: int, classes: int) -> nn.Sequential:
    """The MLP of a ``CategoryHead`` term: a few hand-made features -> class logits."""
    return nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Linear(hidden, classes))
