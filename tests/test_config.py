"""MampConfig as a contract: every way a value gets in is checked, and the error names the field and the value."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_config
from huggingface_hub.errors import StrictDataclassError

from mamp_hub import MampConfig, MampForMaskedMotionPrediction, MampForSkeletonClassification, MampModel
from mamp_hub.configuration_mamp import MampConfigError

# One row per class of mistake: (field, bad value, what the message must say besides the field and value).
BAD_FIELDS = [
    ("num_frames", 1.5, "expected int"),  # wrong type
    ("hidden_size", True, "expected int"),  # a bool is not a size
    ("num_hidden_layers", 0, ">= 1"),  # out of range
    ("motion_stride", -1, ">= 1"),
    ("mask_ratio", 1.0, r"\[0, 1\)"),
    ("label_smoothing", -0.5, r"\[0, 1\)"),
    ("drop_path_rate", 1.2, r"\[0, 1\)"),
    ("layer_norm_eps", -1, "> 0"),
    ("motion_aware_tau", float("nan"), "finite"),  # not finite
    ("initializer_range", float("inf"), "finite"),
    ("masking_strategy", "blok", "motion_aware"),  # not one of the choices
    ("classifier_head", "mlp", "linear_probe"),
    ("pretraining_target", "bones", "joints"),
    ("motion_direction", "both", "forward"),
    ("hidden_act", "gelux", "ACT2FN"),
    ("norm_target", "yes", "expected bool"),
]

# Rules between fields: (overrides, what the message must say).
BAD_COMBINATIONS = [
    (dict(num_frames=18), "multiple of temporal_patch_size"),
    (dict(num_joints=25, joint_patch_size=2), "multiple of joint_patch_size"),
    (dict(hidden_size=30), "divisible by its number of attention heads"),
    (dict(decoder_hidden_size=30), "decoder_hidden_size"),
    (dict(mask_ratio=0.0), "keeps 100 of the 100 tokens"),  # no masked token: the loss would be 0 / 0
    (dict(mask_ratio=0.999), "keeps 0 of the 100 tokens"),  # no visible token
    (dict(num_frames=4), "num_frames \\(4\\) must be at least 2 x temporal_patch_size"),
    (dict(motion_stride=16), r"motion_stride \(16\) must be smaller than num_frames \(16\)"),
    (dict(num_labels=0), "num_labels must be at least 1, got 0"),
    (dict(num_labels=2, id2label={1: "a", 2: "b"}), r"class indices 0..1, got \[1, 2\]"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_FIELDS)
def test_bad_field_values_are_refused_at_construction_and_assignment(field, value, message):
    pattern = rf"MampConfig\.{field}=.*{message}"
    with pytest.raises(MampConfigError, match=pattern):
        tiny_config(**{field: value})
    config = tiny_config()
    with pytest.raises(MampConfigError, match=pattern):
        setattr(config, field, value)
    assert getattr(config, field) == getattr(tiny_config(), field)  # the refused value was not stored


@pytest.mark.parametrize(("overrides", "message"), BAD_COMBINATIONS)
def test_rules_between_fields_are_checked_at_construction(overrides, message):
    with pytest.raises(MampConfigError, match=message):
        tiny_config(**overrides)


@pytest.mark.parametrize(("overrides", "message"), BAD_COMBINATIONS[:-1])
def test_rules_between_fields_are_checked_again_when_a_model_is_built(overrides, message):
    """Assignment checks each field alone; the model checks the combination before it builds anything."""
    config = tiny_config()
    for field, value in overrides.items():
        setattr(config, field, value)
    for model_class in (MampModel, MampForMaskedMotionPrediction, MampForSkeletonClassification):
        with pytest.raises(MampConfigError, match=message):
            model_class(config)


def test_shallow_encoders_are_accepted_where_the_decoder_depth_cannot_matter():
    """The authors' decoder takes the first stochastic-depth rates of the encoder's ramp, so it may not be deeper than
    the encoder, but only where there is a decoder and a ramp: a shallow config (default 5-layer decoder) is a valid
    config, classifier and encoder; pre-training it without stochastic depth works too."""
    config = MampConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, num_frames=16)
    assert config.decoder_num_hidden_layers == 5
    MampModel(config)
    MampForSkeletonClassification(MampConfig(**{**config.to_dict(), "drop_path_rate": 0.3}))
    pretraining = MampForMaskedMotionPrediction(config)
    assert len(pretraining.decoder.decoder_layers) == 5
    deep = MampConfig(**{**config.to_dict(), "drop_path_rate": 0.1})
    with pytest.raises(ValueError, match=r"set decoder_num_hidden_layers <= 2, or drop_path_rate=0 \(now 0.1\)"):
        MampForMaskedMotionPrediction(deep)


def test_errors_are_value_errors_and_strict_dataclass_errors():
    with pytest.raises(ValueError):
        MampConfig(mask_ratio=2.0)
    with pytest.raises(StrictDataclassError):
        MampConfig(mask_ratio=2.0)


def test_unknown_options_and_other_model_types_are_refused(tmp_path):
    with pytest.raises(MampConfigError, match=r"unknown options \['mask_ratoi'\]"):
        MampConfig(mask_ratoi=0.5)
    with pytest.raises(MampConfigError, match="model_type 'vit_mae'"):
        MampConfig.from_dict({"model_type": "vit_mae", "hidden_size": 32})
    MampModel(tiny_config()).save_pretrained(tmp_path)
    with pytest.raises(TypeError, match="eval_crop_ration"):  # transformers hands unknown overrides to the model
        MampModel.from_pretrained(tmp_path, eval_crop_ration=0.9)


def test_from_pretrained_overrides_are_checked(tmp_path):
    MampModel(tiny_config()).save_pretrained(tmp_path)  # a pre-trained encoder, to put a head on
    with pytest.raises(MampConfigError, match="classifier_head='mlp'"):
        MampForSkeletonClassification.from_pretrained(tmp_path, classifier_head="mlp")
    with pytest.raises(MampConfigError, match="motion_aware_tau=nan"):
        MampConfig.from_pretrained(tmp_path, motion_aware_tau=float("nan"))
    with pytest.raises(MampConfigError, match="divisible by its number of attention heads"):
        MampForSkeletonClassification.from_pretrained(tmp_path, num_attention_heads=5)
    with pytest.raises(MampConfigError, match="id2label is None; pass num_labels=N"):
        MampForSkeletonClassification.from_pretrained(tmp_path, num_labels=5, id2label=None)
    loaded = MampForSkeletonClassification.from_pretrained(tmp_path, classifier_head="finetune", drop_path_rate=0.3)
    assert loaded.config.classifier_head == "finetune" and loaded.config.drop_path_rate == 0.3


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("mask_ratio", 0.0, "keeps 100 of the 100 tokens"), ("masking_strategy", "blok", "masking_strategy='blok'")],
)
def test_a_config_json_with_a_bad_value_does_not_load(tmp_path, field, value, message):
    tiny_config().save_pretrained(tmp_path)
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), field: value}))
    with pytest.raises(MampConfigError, match=message):
        MampConfig.from_pretrained(tmp_path)
    with pytest.raises(MampConfigError, match=message):
        MampModel.from_pretrained(tmp_path)


def test_valid_configs_round_trip_unchanged(tmp_path):
    config = tiny_config(
        mask_ratio=0.75, drop_path_rate=0, classifier_head="finetune", num_labels=2, id2label={0: "a", 1: "b"}
    )
    config.save_pretrained(tmp_path)
    loaded = MampConfig.from_pretrained(tmp_path)
    assert loaded.to_dict() == config.to_dict()
    assert loaded.id2label == {0: "a", 1: "b"} and loaded.num_labels == 2
