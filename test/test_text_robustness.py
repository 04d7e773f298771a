"""What keeps an unseen phrasing readable: MiniLM's sentence embedding (ModelConfig.sentence_summary) and hidden
words in training (TrainConfig.text_token_dropout)."""
import dataclasses
import itertools

import numpy as np
import pytest
import torch

from w2r2_ros.model.build import new_model
from w2r2_ros.model.checkpoint import load_checkpoint, save_checkpoint
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.pretrained_text import PretrainedText, sentence_embedding
from w2r2_training.config import TrainConfig
from w2r2_training.heldout_descriptions import HELDOUT_VOCABULARY
from w2r2_training.trainer import drop_text_tokens

from vlm_fixtures import random_inputs


@pytest.fixture(scope="module")
def text():
    return PretrainedText()


def test_the_sentence_embedding_puts_a_paraphrase_nearer_than_another_request(text):
    """The premise of sentence_summary, on the real encoder: a relation said in other words stays closer to the
    original than the same objects in another relation."""
    sentences = ["the chair between the two tables", "the chair flanked by the two tables",
                 "the chair farthest from the two tables"]
    states, mask = text.encode(sentences, 64)
    embedded = sentence_embedding(states, mask)
    torch.testing.assert_close(embedded.norm(dim=-1), torch.ones(3))
    assert float(embedded[0] @ embedded[1]) > float(embedded[0] @ embedded[2]) + 0.05
    # Padding does not count: a sentence alone and in a batch with a longer one embed alike.
    alone = sentence_embedding(*text.encode(sentences[:1], 64))
    torch.testing.assert_close(alone[0], embedded[0], atol=1e-5, rtol=0)


def test_the_sentence_summary_feeds_the_model_and_round_trips(tmp_path, text):
    config = ModelConfig(categories=("chair", "table"), sentence_summary=True)
    torch.manual_seed(0)
    model, tokenizer = new_model(config)
    assert any(name.startswith("text_encoder.sentence.") for name, _ in model.named_parameters())
    states, mask = tokenizer.encode(["the chair between the two tables"], config.max_text_length)
    with torch.no_grad():
        _, pooled = model.text_encoder(states, mask)
        torch.nn.init.zeros_(model.text_encoder.sentence[0].weight)
        torch.nn.init.normal_(model.text_encoder.sentence[1].bias)
        _, moved = model.text_encoder(states, mask)
    assert not torch.allclose(pooled, moved)
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    loaded, _ = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config.sentence_summary
    with torch.no_grad():
        torch.testing.assert_close(loaded.text_encoder(states, mask)[1], moved)


def test_hidden_words_keep_the_first_token_padding_and_their_rate():
    mask = torch.zeros(64, 20, dtype=torch.bool)
    mask[:, :12] = True
    dropped = drop_text_tokens(mask, 0.25, np.random.default_rng(3))
    assert dropped[:, 0].all() and not dropped[:, 12:].any()
    hidden = (mask & ~dropped)[:, 1:12].float().mean().item()
    assert 0.18 < hidden < 0.32
    torch.testing.assert_close(drop_text_tokens(mask, 0.25, np.random.default_rng(3)), dropped)
    assert torch.equal(drop_text_tokens(mask, 0.0, np.random.default_rng(3)), mask)
    with pytest.raises(ValueError, match="text_token_dropout"):
        TrainConfig(text_token_dropout=1.0)
    with pytest.raises(ValueError, match="embedded model only"):
        TrainConfig(text_token_dropout=0.1, model_kind="video_llm")


def test_name_span_reads_the_named_word_in_the_pretrained_space(tmp_path, text):
    """With name_span the target's class is the frozen encoder's state of the words pointed at, mapped like the
    names: an untrained model whose pointer reads every token evenly (weights zeroed) already puts "couch" nearest
    "sofa" and "cupboard" nearest "cabinet", words no training gave it; the flag and the weights round-trip."""
    categories = ("chair", "table", "sofa", "bed", "lamp", "cabinet", "toilet", "sink")
    config = ModelConfig(image_width=64, image_height=48, patch_size=16, video_token_pool=1, categories=categories,
                         name_span=True)  # 4 x 3 patches: random_inputs' 12 per frame
    torch.manual_seed(0)
    model, tokenizer = new_model(config)
    assert model.grounding_head.target_category is None and model.relation_head.anchor_category is None
    with torch.no_grad():
        for layer in (model.name_span.query, model.name_span.key):
            torch.nn.init.zeros_(layer.weight)
            torch.nn.init.zeros_(layer.bias)
    inputs = dataclasses.replace(random_inputs(), frames=torch.rand(3, 3, 48, 64))
    states, mask = tokenizer.encode(["couch", "cupboard"], config.max_text_length)
    model.eval()
    with torch.no_grad():
        out = model(inputs, states, mask)
    assert [categories[i] for i in out.target_category_logits.argmax(dim=-1)] == ["sofa", "cabinet"]
    save_checkpoint(model, tokenizer, tmp_path / "ckpt")
    loaded, _ = load_checkpoint(tmp_path / "ckpt")
    assert loaded.config.name_span
    loaded.eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(inputs, states, mask).target_category_logits, out.target_category_logits)
    with pytest.raises(ValueError, match="name_span"):
        ModelConfig(text_model="", name_span=True)


# Synonyms that neither the training phraser nor the held-out one uses (heldout_descriptions.HELDOUT_VOCABULARY).
FRESH_SYNONYMS = {
    "chair": ("seat", "stool"), "sofa": ("loveseat", "divan"), "bed": ("cot", "mattress"), "lamp": ("sconce", "lampshade"),
    "cabinet": ("dresser", "chest of drawers"), "plant": ("fern", "potted palm"), "monitor": ("tv", "television"),
    "trash can": ("dustbin", "rubbish bin"), "bookshelf": ("bookcase",), "picture": ("painting", "photo"),
    "counter": ("countertop",), "curtain": ("blind",), "refrigerator": ("fridge", "freezer"), "toilet": ("lavatory",),
    "sink": ("washbasin",), "bathtub": ("bath",), "cup": ("mug",), "box": ("package", "parcel"), "window": ("glass pane",),
}


def test_a_synonym_s_own_states_name_its_class_better_than_the_sentence(text):
    """The premise of name_span, on the real encoder: the frozen states of the words that name the object are
    nearer their class's name (nearest of the 25 training names) than the whole sentence's embedding is: 71 and
    44 of 90 when written."""
    names = list(HELDOUT_VOCABULARY.names)
    vectors = text.name_embeddings(names)
    frames = ("where is the {} by the wall", "find me a {}, the one closest to the door", "show the second {} from the left")
    span_right = sentence_right = 0
    for name, synonyms in FRESH_SYNONYMS.items():
        assert not set(synonyms) & set(HELDOUT_VOCABULARY.names[name])
        for synonym, frame in itertools.product(synonyms, frames):
            sentence = frame.format(synonym)
            states, mask = text.encode([sentence], 64)
            ids = text.tokenizer(sentence)["input_ids"]
            word = text.tokenizer(synonym, add_special_tokens=False)["input_ids"]
            start = next(i for i in range(len(ids)) if ids[i:i + len(word)] == word)
            span = states[0, start:start + len(word)].mean(dim=0)
            span_right += names[int((vectors @ span).argmax())] == name
            sentence_right += names[int((vectors @ sentence_embedding(states, mask)[0]).argmax())] == name
    assert span_right >= 65 and sentence_right <= span_right - 15, (span_right, sentence_right)
