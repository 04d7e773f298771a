"""What keeps an unseen phrasing readable: MiniLM's sentence embedding (ModelConfig.sentence_summary), hidden
words in training (TrainConfig.text_token_dropout) and the class the text names drawn onto the category names
when answering (ModelConfig.snap_names)."""
import numpy as np
import pytest
import torch

from w2r2_ros.model.build import new_model
from w2r2_ros.model.checkpoint import load_checkpoint, save_checkpoint
from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounding_head import NameMatch
from w2r2_ros.model.pretrained_text import PretrainedText, sentence_embedding
from w2r2_training.config import TrainConfig
from w2r2_training.trainer import drop_text_tokens


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


def test_snapped_names_sharpen_the_match_when_answering_and_leave_training_and_no_target_raw(text):
    """A text vector between two names (what an unseen synonym gives) matches its nearer name's objects better
    and the other's worse once drawn onto the names; training mode and ``snap=False`` (what "no target" reads)
    keep the raw cosine, so a vector far from every name still matches nothing well."""
    names = NameMatch(ModelConfig(categories=("chair", "table", "sofa"), colours=()))
    names.categories.names.copy_(text.name_embeddings(["chair", "table", "sofa"]))
    chair, table, sofa = names.categories.names
    objects = torch.stack([sofa, chair, table])[None]  # (1, N=3, 384)
    between = (0.6 * sofa + 0.4 * chair)[None, None]  # (1, Q=1, 384)
    names.train()
    trained = names.match(objects, between)[0, 0]
    names.eval()
    answered = names.match(objects, between)[0, 0]
    raw = names.match(objects, between, snap=False)[0, 0]
    torch.testing.assert_close(raw, trained)
    assert answered[0] > raw[0] and answered[1] < raw[1] and answered[2] < raw[2]
    assert answered[0] - answered[1:].max() > raw[0] - raw[1:].max() + 0.05
    far = torch.randn(1, 1, 384, generator=torch.Generator().manual_seed(0))
    assert names.match(objects, far, snap=False).max() < 0.6 < names.match(objects, far).max()
    names.snap_names = False
    torch.testing.assert_close(names.match(objects, between)[0, 0], raw)
