"""The pretrained text encoder's top transformer layers, made ours: trained with the grounding model.

With ``ModelConfig.text_finetune_layers`` = k, MiniLM's layers below the top k stay frozen and their output
per text is cached (``PretrainedText`` then returns the hidden states entering layer ``n - k``); the top k
layers run inside the model on those states, start from MiniLM's own weights (``start_from``) and are saved
in our checkpoint as ``text_encoder.pretrained_layers.layer.<i>.*``, ``i`` being MiniLM's own layer index.

Why the top layers: they are the ones that turn word pieces into what a sentence means, which is where a
frozen encoder's states and our task's needs differ (the issue's "frozen, or its top layers fine-tuned:
measure"); the bottom layers carry word meaning and spelling, which is what lets words training never uses
still work, and they stay frozen and cached, so a training step and a query pay only for k layers.
No dropout (MiniLM was trained with 0.1): the rest of the model has none, and W2R2's two passes then read
the same text states.
"""
from __future__ import annotations

import torch
from torch import nn
from transformers.models.bert.modeling_bert import BertLayer

from w2r2_ros.model.pretrained_text import text_model_config


class PretrainedTopLayers(nn.Module):
    """The top ``count`` layers of the pretrained text encoder: hidden states (B, L, 384) entering layer
    ``n - count`` and mask (B, L) -> its last hidden states (B, L, 384)."""

    def __init__(self, count: int) -> None:
        super().__init__()
        config = text_model_config(dropout=0.0)
        total = config.num_hidden_layers
        if not 1 <= count <= total:
            raise ValueError(f"text_finetune_layers must be in 0..{total} (the text encoder has {total} layers), got {count}")
        self.first = total - count
        self.layer = nn.ModuleDict({str(i): BertLayer(config, layer_idx=i) for i in range(self.first, total)})

    def start_from(self, pretrained: nn.Module) -> None:
        """Copy the pretrained encoder's own weights of these layers (``pretrained.encoder.layer[i]``)."""
        for index, layer in self.layer.items():
            layer.load_state_dict(pretrained.encoder.layer[int(index)].state_dict())

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # BERT's additive attention mask: padded keys get the dtype's lowest value.
        additive = (~mask)[:, None, None, :].to(states.dtype) * torch.finfo(states.dtype).min
        for layer in self.layer.values():
            states = layer(states, additive)
        return states
