"""The optimizer's parameter groups: the model's read-out terms learn at their own rate."""
import pytest
import torch

from w2r2_ros.model.config import ModelConfig
from w2r2_ros.model.grounding_model import W2R2GroundingModel
from w2r2_training.config import ConfigError, OptimConfig, load_config
from w2r2_training.trainer import parameter_groups

TERMS = ("category_head.classify_shape.", "colour_head.classify_pixels.")


def small_model(**switches: bool) -> W2R2GroundingModel:
    torch.manual_seed(0)
    return W2R2GroundingModel(ModelConfig(hidden_size=32, categories=("chair", "table"), colours=("red", "blue"), **switches))


def test_every_parameter_is_in_exactly_one_group_and_the_read_out_terms_in_the_second():
    model = small_model()
    groups = parameter_groups(model, OptimConfig(lr=1e-3, term_lr_scale=10.0))
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in model.parameters())
    terms = {id(p) for name, p in model.named_parameters() if name.startswith(TERMS)}
    assert len(terms) == 8 and {id(p) for p in groups[1]["params"]} == terms
    assert groups[1]["lr"] == pytest.approx(1e-2) and "lr" not in groups[0]


def test_a_model_without_read_out_terms_has_one_group():
    model = small_model(category_shape=False, colour_pixels=False)
    groups = parameter_groups(model, OptimConfig(term_lr_scale=10.0))
    assert len(groups) == 1 and len(groups[0]["params"]) == len(list(model.parameters()))


def test_the_first_adamw_step_moves_the_read_out_terms_by_the_scaled_rate():
    # Adam's first step moves every parameter by about its learning rate, whatever the gradient's size.
    model = small_model()
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(parameter_groups(model, OptimConfig(lr=1e-3, term_lr_scale=10.0)), lr=1e-3, weight_decay=0.0)
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.5)
    optimizer.step()
    for name, p in model.named_parameters():
        moved = (before[name] - p.detach()).abs().max().item()
        expected = 1e-2 if name.startswith(TERMS) else 1e-3
        assert moved == pytest.approx(expected, rel=1e-3), name


def test_a_scale_that_is_not_positive_is_a_config_error():
    with pytest.raises(ConfigError, match="term_lr_scale must be > 0"):
        load_config(None, ["optim.term_lr_scale=0"])


def test_the_fine_tuned_text_layers_learn_at_their_own_rate():
    torch.manual_seed(0)
    model = W2R2GroundingModel(ModelConfig(hidden_size=32, categories=("chair",), text_finetune_layers=1))
    groups = parameter_groups(model, OptimConfig(lr=1e-3, term_lr_scale=10.0, text_finetune_lr_scale=0.1))
    layer = {id(p) for name, p in model.named_parameters() if name.startswith("text_encoder.pretrained_layers.layer.5.")}
    assert len(groups) == 3 and len(layer) > 10 and {id(p) for p in groups[2]["params"]} == layer
    assert groups[2]["lr"] == pytest.approx(1e-4)
    assert sorted(id(p) for g in groups for p in g["params"]) == sorted(id(p) for p in model.parameters())
    with pytest.raises(ConfigError, match="text_finetune_lr_scale must be > 0"):
        load_config(None, ["optim.text_finetune_lr_scale=0"])
