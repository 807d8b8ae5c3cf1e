"""The model family: parity with the authors' reference run, behaviour, round trips and bad inputs."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_config
from transformers import (
    AutoConfig,
    AutoFeatureExtractor,
    AutoModel,
    AutoModelForPreTraining,
    AutoModelForVideoClassification,
)

from mamp_hub import (
    MampConfig,
    MampForMaskedMotionPrediction,
    MampForSkeletonClassification,
    MampModel,
    MampSkeletonProcessor,
)
from mamp_hub.convert import convert_state_dict
from mamp_hub.modeling_mamp import extract_motion

ATOL = 1e-5


def load_reference_model(reference, model: str, **overrides):
    """Our model with the official weights of the reference run (`pretrain`, `linprobe` or `finetune`)."""
    state_dict, _ = convert_state_dict(reference.state_dict(model))
    if model == "pretrain":
        instance = MampForMaskedMotionPrediction(tiny_config(**overrides))
    else:
        head = "linear_probe" if model == "linprobe" else "finetune"
        instance = MampForSkeletonClassification(tiny_config(classifier_head=head, **overrides))
    instance.load_state_dict(state_dict, strict=True)
    return instance.eval()


# --- parity with the authors' implementation --------------------------------------------------


@pytest.mark.parametrize("attn_implementation", ["eager", "sdpa"])
@pytest.mark.parametrize("strategy", ["motion_aware", "random"])
def test_pretraining_matches_reference(reference, strategy, attn_implementation):
    model = load_reference_model(reference, "pretrain", masking_strategy=strategy)
    model.set_attn_implementation(attn_implementation)
    with torch.no_grad():
        output = model(reference.skeleton_values, noise=reference[f"pretrain.{strategy}.noise"])
    assert torch.equal(output.mask, reference[f"pretrain.{strategy}.mask"])
    assert torch.equal(output.ids_restore, reference[f"pretrain.{strategy}.ids_restore"])
    torch.testing.assert_close(
        output.encoder_last_hidden_state, reference[f"pretrain.{strategy}.latent"], atol=ATOL, rtol=0
    )
    torch.testing.assert_close(output.logits, reference[f"pretrain.{strategy}.pred"], atol=ATOL, rtol=0)
    torch.testing.assert_close(output.loss.reshape(1), reference[f"pretrain.{strategy}.loss"], atol=ATOL, rtol=0)


@pytest.mark.parametrize("head", ["linprobe", "finetune"])
def test_classification_heads_match_reference(reference, head):
    model = load_reference_model(reference, head)
    with torch.no_grad():
        logits = model(reference.skeleton_values).logits
    torch.testing.assert_close(logits, reference[f"{head}.logits"], atol=ATOL, rtol=0)


def test_reference_config_matches_metadata(reference):
    args = reference.model_args
    config = tiny_config()
    assert (config.hidden_size, config.num_hidden_layers, config.num_frames) == (
        args["dim_feat"],
        args["depth"],
        args["num_frames"],
    )
    assert float(reference.metadata["mask_ratio"]) == config.mask_ratio
    assert float(reference.metadata["motion_aware_tau"]) == config.motion_aware_tau


# --- behaviour ---------------------------------------------------------------------------------


def test_masking_is_deterministic_given_noise_and_random_otherwise(config):
    model = MampForMaskedMotionPrediction(config).eval()
    skeletons = torch.randn(2, 2, 16, 25, 3)
    noise = torch.rand(4, 100)
    with torch.no_grad():
        first, second = model(skeletons, noise=noise), model(skeletons, noise=noise)
        third = model(skeletons)
    assert torch.equal(first.mask, second.mask) and torch.equal(first.loss, second.loss)
    assert not torch.equal(first.mask, third.mask)
    assert (first.mask.sum(dim=1) == 100 - int(100 * (1 - config.mask_ratio))).all()


def test_motion_aware_masking_prefers_moving_joints(config):
    """Tokens whose joints move are masked far more often than static ones (Section 3.4)."""
    model = MampForMaskedMotionPrediction(tiny_config(motion_aware_tau=0.1)).eval()
    skeletons = torch.zeros(64, 1, 16, 25, 3)
    moving = torch.arange(5)
    skeletons[:, :, :, moving, 0] = torch.linspace(0, 3, 16).view(1, 1, 16, 1) ** 2
    with torch.no_grad():
        mask = model(skeletons).mask.view(64, 4, 25)
    assert mask[:, 1:, moving].mean() > 0.99
    assert mask[:, :, 5:].mean() < mask[:, 1:, moving].mean()


def test_motion_forward_and_backward_difference():
    x = torch.arange(6.0).pow(2).view(1, 6, 1, 1)  # 0 1 4 9 16 25
    forward = extract_motion(x, 1, "forward", "constant").flatten().tolist()
    assert forward == [1, 3, 5, 7, 9, 0]
    assert extract_motion(x, 2, "forward", "replicate").flatten().tolist() == [4, 8, 12, 16, 12, 16]
    assert extract_motion(x, 1, "backward", "constant").flatten().tolist() == [0, 1, 3, 5, 7, 9]
    assert extract_motion(x, 1, "backward", "replicate").flatten().tolist() == [1, 1, 3, 5, 7, 9]


@pytest.mark.parametrize(
    "overrides",
    [
        dict(pretraining_target="joints", masking_strategy="random"),  # SkeletonMAE-style baseline
        dict(pretraining_input="motion"),
        dict(motion_direction="backward", motion_padding="replicate", motion_stride=2),
        dict(norm_target=False),
    ],
)
def test_pretraining_variants_train(overrides):
    model = MampForMaskedMotionPrediction(tiny_config(**overrides))
    output = model(torch.randn(2, 2, 16, 25, 3))
    output.loss.backward()
    assert torch.isfinite(output.loss)
    assert model.mamp.embeddings.projection.weight.grad is not None


def test_joint_target_is_the_normalised_input(config):
    """With joints as target and a perfect predictor, the loss is zero: the target is what we think it is."""
    model = MampForMaskedMotionPrediction(tiny_config(pretraining_target="joints", norm_target=False)).eval()
    skeletons = torch.randn(1, 1, 16, 25, 3)
    with torch.no_grad():
        output = model(skeletons)
    target = skeletons.view(1, 4, 4, 25, 3).permute(0, 1, 3, 2, 4).reshape(1, 100, 12)
    per_token = (output.logits - target).pow(2).mean(-1)
    torch.testing.assert_close((per_token * output.mask).sum() / output.mask.sum(), output.loss)


def test_model_output_shapes_and_pooling(config):
    model = MampModel(config).eval()
    skeletons = torch.randn(3, 2, 16, 25, 3)
    with torch.no_grad():
        output = model(skeletons, output_hidden_states=True, output_attentions=True)
    assert output.last_hidden_state.shape == (3, 2, 4, 25, 32)
    torch.testing.assert_close(output.pooler_output, output.last_hidden_state.mean(dim=(1, 2, 3)))
    assert len(output.hidden_states) == config.num_hidden_layers + 1
    assert output.hidden_states[0].shape == (6, 100, 32)
    assert len(output.attentions) == config.num_hidden_layers
    assert output.attentions[0].shape == (6, 4, 100, 100)
    torch.testing.assert_close(output.attentions[0].sum(-1), torch.ones(6, 4, 100))


def test_four_dimensional_input_is_one_person(config):
    model = MampModel(config).eval()
    skeletons = torch.randn(2, 16, 25, 3)
    with torch.no_grad():
        torch.testing.assert_close(
            model(skeletons).last_hidden_state, model(skeletons.unsqueeze(1)).last_hidden_state
        )


def test_absent_person_fast_path_is_exact(config):
    """Eval mode computes an all-zero person slot once per batch; the result equals encoding every slot."""
    model = MampForSkeletonClassification(tiny_config(classifier_head="finetune")).eval()
    skeletons = torch.randn(5, 2, 16, 25, 3)
    skeletons[[0, 2, 3], 1] = 0
    skeletons[4] = 0
    with torch.no_grad():
        fast = model.mamp(skeletons)
        full = model.mamp(skeletons, output_hidden_states=True)  # hidden states need every slot: full path
        torch.testing.assert_close(fast.last_hidden_state, full.last_hidden_state, atol=ATOL, rtol=0)
        torch.testing.assert_close(fast.pooler_output, full.pooler_output, atol=ATOL, rtol=0)


def test_other_sequence_lengths_interpolate_temporal_embeddings(config):
    model = MampModel(config).eval()
    with torch.no_grad():
        longer = model(torch.randn(1, 1, 32, 25, 3)).last_hidden_state
    assert longer.shape == (1, 1, 8, 25, 32)
    pretraining = MampForMaskedMotionPrediction(config)
    assert torch.isfinite(pretraining(torch.randn(1, 1, 8, 25, 3)).loss)


def test_classification_loss_label_smoothing_and_freezing():
    model = MampForSkeletonClassification(tiny_config(label_smoothing=0.1))
    skeletons, labels = torch.randn(4, 2, 16, 25, 3), torch.tensor([0, 1, 2, 6])
    output = model(skeletons, labels=labels)
    expected = torch.nn.functional.cross_entropy(output.logits, labels, label_smoothing=0.1)
    torch.testing.assert_close(output.loss, expected)
    model.freeze_encoder()
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"classifier.weight", "classifier.bias"}
    model(skeletons, labels=labels).loss.backward()
    assert all(p.grad is None for p in model.mamp.parameters())


def test_gradient_checkpointing_gives_the_same_gradients(config):
    torch.manual_seed(0)
    model = MampForMaskedMotionPrediction(config).train()
    skeletons, noise = torch.randn(2, 2, 16, 25, 3), torch.rand(4, 100)

    def gradients():
        model.zero_grad()
        model(skeletons, noise=noise).loss.backward()
        return {name: p.grad.clone() for name, p in model.named_parameters()}

    plain = gradients()
    model.activation_checkpointing_enable()
    assert all(layer.gradient_checkpointing for layer in model.mamp.encoder.layers)
    checkpointed = gradients()
    for name, grad in plain.items():
        torch.testing.assert_close(checkpointed[name], grad, atol=1e-6, rtol=1e-5, msg=name)


def test_sdpa_and_eager_agree(config):
    model = MampModel(config).eval()
    skeletons = torch.randn(2, 2, 16, 25, 3)
    with torch.no_grad():
        model.set_attn_implementation("sdpa")
        sdpa = model(skeletons).last_hidden_state
        model.set_attn_implementation("eager")
        assert model.config._attn_implementation == "eager"  # the switch takes effect
        eager = model(skeletons).last_hidden_state
    torch.testing.assert_close(sdpa, eager, atol=ATOL, rtol=0)


# --- round trips and Auto classes --------------------------------------------------------------


def test_save_pretrained_round_trip_keeps_every_output(reference, tmp_path):
    for name, auto_class in (
        ("pretrain", AutoModelForPreTraining),
        ("linprobe", AutoModelForVideoClassification),
        ("finetune", AutoModelForVideoClassification),
    ):
        model = load_reference_model(reference, name)
        model.save_pretrained(tmp_path / name)
        assert (tmp_path / name / "model.safetensors").is_file()
        loaded = auto_class.from_pretrained(tmp_path / name).eval()
        assert type(loaded) is type(model)
        kwargs = {"noise": reference["pretrain.motion_aware.noise"]} if name == "pretrain" else {}
        with torch.no_grad():
            before, after = model(reference.skeleton_values, **kwargs), loaded(reference.skeleton_values, **kwargs)
        for key in before.keys():
            torch.testing.assert_close(after[key], before[key], atol=0, rtol=0, msg=f"{name}.{key}")


def test_auto_classes_and_encoder_transfer(reference, tmp_path):
    pretrained = load_reference_model(reference, "pretrain")
    pretrained.save_pretrained(tmp_path)
    MampSkeletonProcessor(num_frames=16).save_pretrained(tmp_path)
    assert isinstance(AutoConfig.from_pretrained(tmp_path), MampConfig)
    processor = AutoFeatureExtractor.from_pretrained(tmp_path)
    assert isinstance(processor, MampSkeletonProcessor) and processor.num_frames == 16
    encoder = AutoModel.from_pretrained(tmp_path)
    assert isinstance(encoder, MampModel)
    torch.testing.assert_close(encoder.layernorm.weight, pretrained.mamp.layernorm.weight)

    classifier = MampForSkeletonClassification.from_pretrained(
        tmp_path, num_labels=60, classifier_head="finetune", drop_path_rate=0.3
    )
    assert classifier.config.num_labels == 60 and classifier.config.drop_path_rate == 0.3
    for (name, ours), theirs in zip(classifier.mamp.state_dict().items(), pretrained.mamp.state_dict().values()):
        torch.testing.assert_close(ours, theirs, msg=name)
    assert classifier.classifier.fc2.weight.shape == (60, 2048)
    assert classifier.classifier.fc2.weight.abs().sum() > 0  # initialised, not left at zero


def test_fresh_model_initialisation_follows_the_authors(config):
    model = MampForMaskedMotionPrediction(config)
    assert model.mamp.encoder.layers[0].mlp.fc1.bias.abs().sum() == 0
    assert 0.005 < model.mamp.embeddings.temporal_position_embeddings.std() < 0.05
    assert 0.005 < model.decoder.mask_token.std() < 0.05
    bound = (6 / (32 + 128)) ** 0.5  # xavier-uniform of fc1
    assert model.mamp.encoder.layers[0].mlp.fc1.weight.abs().max() <= bound
    probe = MampForSkeletonClassification(config).classifier.weight
    assert probe.abs().max() < 0.06 and 0.005 < probe.std() < 0.015  # normal with std 0.01, not xavier


# --- bad inputs --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "skeletons, message",
    [
        (torch.randn(16, 25, 3), "shape"),
        (torch.randn(1, 1, 1, 16, 25, 3), "shape"),
        (torch.randn(1, 2, 16, 17, 3), "25 joints"),
        (torch.randn(1, 2, 16, 25, 2), "3 channels"),
        (torch.randn(1, 2, 15, 25, 3), "multiple of temporal_patch_size"),
        (torch.full((1, 2, 16, 25, 3), float("nan")), "NaN"),
        (torch.full((1, 2, 16, 25, 3), float("inf")), "NaN or infinite"),
        (torch.randn(0, 2, 16, 25, 3), "empty"),
    ],
)
def test_bad_inputs_raise_clear_errors(config, skeletons, message):
    for model in (MampModel(config), MampForMaskedMotionPrediction(config), MampForSkeletonClassification(config)):
        with pytest.raises(ValueError, match=message):
            model(skeletons)


def test_bad_noise_labels_and_arrays_raise(config):
    skeletons = torch.randn(2, 2, 16, 25, 3)
    with pytest.raises(ValueError, match="noise must have shape"):
        MampForMaskedMotionPrediction(config)(skeletons, noise=torch.rand(2, 100))
    with pytest.raises(ValueError, match="labels must be class indices"):
        MampForSkeletonClassification(config)(skeletons, labels=torch.zeros(2, 7))
    with pytest.raises(ValueError, match="torch.Tensor"):
        MampModel(config)(skeletons.numpy())


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(masking_strategy="block"), "masking_strategy"),
        (dict(num_frames=18), "multiple of temporal_patch_size"),
        (dict(hidden_size=30), "divisible"),
        (dict(mask_ratio=1.0), "mask_ratio"),
        (dict(classifier_head="mlp"), "classifier_head"),
        (dict(pretraining_target="bones"), "pretraining_target"),
    ],
)
def test_bad_config_values_raise(kwargs, message):
    with pytest.raises(ValueError, match=message):
        MampConfig(**kwargs)
