"""TextEncoder: the query's token states -> contextual token states, and one pooled text vector per fusion query token.

Input: with ``ModelConfig.text_model`` the frozen pretrained encoder's token states (B, L, 384,
``PretrainedText``), first run through its top ``text_finetune_layers`` layers when those are ours
(``PretrainedTopLayers``), then projected to the hidden size; without, word ids of the old word-level tokenizer.
A small trainable encoder (``text_layers`` of the backbone) contextualises them, then each query token
(GRD, ANC...) gets an attention-pooled summary with its own learned pooling vector: a short path through
which the grounding token reads the relation and each anchor pointer its anchor's words (docs/TRAINING.md,
"Choices"). With ``ModelConfig.sentence_summary`` the pretrained encoder's sentence embedding (mean-pooled,
normalised: the vector it was trained to make alike for paraphrases) is projected and added to each summary:
the small encoder above is trained on one phraser's sentences, the sentence embedding on many people's.
"""
from __future__ import annotations

import math

import torch
from torch import nn
from transformers import AutoModel

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.pretrained_text import TEXT_STATE_SIZE, sentence_embedding
from w2r2_ros.model.text_top_layers import PretrainedTopLayers


class TextEncoder(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        if config.text_finetune_layers:
            self.pretrained_layers = PretrainedTopLayers(config.text_finetune_layers)
        if config.open_vocabulary:
            self.project = nn.Sequential(nn.Linear(TEXT_STATE_SIZE, config.hidden_size), nn.LayerNorm(config.hidden_size))
        else:
            self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=0)
        if config.open_vocabulary and config.sentence_summary:
            self.sentence = nn.Sequential(nn.Linear(TEXT_STATE_SIZE, config.hidden_size), nn.LayerNorm(config.hidden_size))
        self.encoder = AutoModel.from_config(config.text_backbone_config(), **config.backbone_kwargs)
        self.pooling = nn.Parameter(torch.randn(1 + config.relation_anchors, config.hidden_size) * 0.02)
        self.scale = 1.0 / math.sqrt(config.hidden_size)

    def forward(self, text: torch.Tensor, text_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Pretrained token states (B, L, 384), or word ids (B, L), and mask (B, L) -> (token states (B, L, D),
        pooled text per query token (B, 1 + A, D))."""
        if hasattr(self, "pretrained_layers"):
            text = self.pretrained_layers(text.to(self.pooling.dtype), text_mask)
        embeds = self.project(text.to(self.pooling.dtype)) if hasattr(self, "project") else self.word_embeddings(text)
        states = self.encoder(inputs_embeds=embeds, attention_mask=text_mask.long()).last_hidden_state
        weights = torch.einsum("qd,bld->bql", self.pooling, states) * self.scale
        weights = weights.masked_fill(~text_mask[:, None, :], -1.0e4).softmax(dim=-1)
        pooled = torch.einsum("bql,bld->bqd", weights, states)
        if hasattr(self, "sentence"):
            pooled = pooled + self.sentence(sentence_embedding(text.to(self.pooling.dtype), text_mask))[:, None, :]
        return states, pooled
