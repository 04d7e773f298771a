"""A new, untrained grounding model together with the text front end its config names."""
from __future__ import annotations

import dataclasses
from typing import Sequence

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounding_model import W2R2GroundingModel
from w2r2_ros.model.pretrained_text import TEXT_MODEL, PretrainedText, TextModelError
from w2r2_ros.model.text import QueryTokenizer


def new_model(config: ModelConfig, texts: Sequence[str] = ()) -> tuple[W2R2GroundingModel, QueryTokenizer | PretrainedText]:
    """(model, text front end) for ``config``: with ``text_model`` the pretrained encoder (its weights' hash
    written into the config, the category and colour names embedded, the top layers the model trains,
    ``text_finetune_layers``, started from the encoder's own); with ``text_model`` "" a word-level
    tokenizer built from ``texts`` (``vocab_size`` set from it)."""
    if not config.text_model:
        tokenizer = QueryTokenizer.build(texts)
        return W2R2GroundingModel(dataclasses.replace(config, vocab_size=tokenizer.vocab_size)), tokenizer
    if config.text_model != TEXT_MODEL:
        raise TextModelError(f"text_model {config.text_model!r}: the only pretrained text encoder is {TEXT_MODEL!r} (\"\" for word-level)")
    text = PretrainedText(finetune_layers=config.text_finetune_layers)
    model = W2R2GroundingModel(dataclasses.replace(config, text_model_sha256=text.identity["sha256"]))
    if config.text_finetune_layers:
        model.text_encoder.pretrained_layers.start_from(text.model)
    model.set_names(text.name_embeddings(config.categories), text.name_embeddings(config.colours))
    return model, text
