"""NameSpan: what a query names (its target's and each anchor's class), read in the pretrained text space.

Each query token (GRD, ANC...) points at the words of the query that name its object (attention of its pooled
text over the contextual token states) and takes the frozen MiniLM states of those words, mapped by the same
learned map A that the category names go through (``NameScorer.project``). So "couch" is scored against the
names as A(state of "couch") against A(embedding of "sofa"): as close as MiniLM puts the two words, whatever the
heads learned, which a learned read-out of the pooled text (the default) does not keep: it maps the training
names' contexts and nothing guarantees an unseen word lands near its synonym (issue 15: unseen words lost 18
points). Why the token states and not the sentence embedding: in a probe of 90 queries naming a class by a
synonym that neither training nor the held-out phraser uses ("loveseat", "fridge", "dustbin"... in three sentence
frames; ``test_text_robustness.py::test_a_synonym_s_own_states_name_its_class_better_than_the_sentence``), the
frozen states of the synonym's own words were nearest to the right one of the 25 training names in 71, the whole
sentence's embedding in 44.
Switched by ``ModelConfig.name_span``.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from w2r2_ros.model.config import ModelConfig


class NameSpan(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.query = nn.Linear(config.hidden_size, config.hidden_size)
        self.key = nn.Linear(config.hidden_size, config.hidden_size)
        self.scale = 1.0 / math.sqrt(config.hidden_size)

    def forward(
        self, pooled_text: torch.Tensor, states: torch.Tensor, pretrained: torch.Tensor, text_mask: torch.Tensor
    ) -> torch.Tensor:
        """(B, Q, 384) pretrained-space vectors of the words each query token points at.

        ``pooled_text`` (B, Q, D) the query tokens' pooled text, ``states`` (B, L, D) the contextual token states
        (``TextEncoder``), ``pretrained`` (B, L, 384) the frozen encoder's states they came from, ``text_mask`` (B, L).
        """
        weights = torch.einsum("bqd,bld->bql", self.query(pooled_text), self.key(states)) * self.scale
        weights = weights.masked_fill(~text_mask[:, None, :], -1.0e4).softmax(dim=-1)
        return torch.einsum("bql,blk->bqk", weights, pretrained.to(weights.dtype))
