"""The model family: parity with the authors' reference run, behaviour, round trips and bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import FIXTURES, tiny_config
from safetensors import safe_open
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
from mamp_hub.layers.embeddings import patchify
from mamp_hub.modeling_mamp import extract_motion, masking_probabilities
from mamp_hub.tools.convert import convert_state_dict

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


def test_masking_probabilities_are_the_scores_without_gumbel_noise(config):
    """Eq. 5 alone: a distribution over each sequence's tokens, whose log is the masking score when the Gumbel
    term is zero (noise = exp(-1))."""
    model = MampForMaskedMotionPrediction(config)
    joint_patches = patchify(torch.randn(3, 16, 25, 3), 4, 1)
    probabilities = masking_probabilities(joint_patches, config.motion_aware_tau)
    torch.testing.assert_close(probabilities.sum(-1), torch.ones(3))
    scores = model.masking_scores(joint_patches, torch.full((3, 100), math.exp(-1)))
    torch.testing.assert_close(scores.exp(), probabilities, atol=1e-7, rtol=1e-5)


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
    """Each variant trains, and changes the objective: the same weights, input and noise give another loss."""
    torch.manual_seed(0)
    default = MampForMaskedMotionPrediction(tiny_config())
    variant = MampForMaskedMotionPrediction(tiny_config(**overrides))
    variant.load_state_dict(default.state_dict())
    skeletons, noise = torch.randn(2, 2, 16, 25, 3), torch.rand(4, 100)
    output = variant(skeletons, noise=noise)
    output.loss.backward()
    assert torch.isfinite(output.loss)
    assert variant.mamp.embeddings.projection.weight.grad.abs().sum() > 0
    with torch.no_grad():
        assert not torch.allclose(output.loss, default(skeletons, noise=noise).loss)


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
        torch.testing.assert_close(model(skeletons).last_hidden_state, model(skeletons.unsqueeze(1)).last_hidden_state)


def test_absent_person_fast_path_is_exact(config):
    """Given the present slots (as the processor returns them), eval mode encodes an all-zero person slot once per
    batch; the result equals encoding every slot."""
    model = MampForSkeletonClassification(tiny_config(classifier_head="finetune")).eval()
    skeletons = torch.randn(5, 2, 16, 25, 3)
    skeletons[[0, 2, 3], 1] = 0
    skeletons[4] = 0
    present = torch.tensor([0, 2, 3, 4, 6, 7])
    encoded = []
    model.mamp.encoder.layers[0].register_forward_hook(lambda module, args, output: encoded.append(len(output)))
    with torch.no_grad():
        fast = model.mamp(skeletons, present_persons=present)
        full = model.mamp(skeletons)
        recorded = model.mamp(skeletons, present_persons=present, output_hidden_states=True)  # needs every slot
        torch.testing.assert_close(fast.last_hidden_state, full.last_hidden_state, atol=ATOL, rtol=0)
        torch.testing.assert_close(fast.pooler_output, full.pooler_output, atol=ATOL, rtol=0)
        torch.testing.assert_close(recorded.last_hidden_state, full.last_hidden_state, atol=0, rtol=0)
        torch.testing.assert_close(
            model(skeletons, present_persons=present).logits, model(skeletons).logits, atol=ATOL, rtol=0
        )
    assert encoded[:3] == [len(present) + 1, 10, 10]  # the present slots and one empty slot, then all of them

    # A DataParallel replica gets a slice of the batch and an unrelated slice of the indices: it encodes every slot.
    model.mamp._is_replica = True
    with torch.no_grad():
        replica = model.mamp(skeletons, present_persons=present[:3])
    torch.testing.assert_close(replica.last_hidden_state, full.last_hidden_state, atol=0, rtol=0)


def test_other_sequence_lengths_interpolate_temporal_embeddings(config):
    """A 32-frame input (the table has 16 frames' worth, 4 segments) gets the table linearly resampled to 8."""
    model = MampModel(config).eval()
    skeletons = torch.randn(1, 1, 32, 25, 3)
    with torch.no_grad():
        output = model(skeletons, output_hidden_states=True)
        embeddings = model.embeddings
        table = embeddings.temporal_position_embeddings[0, :, 0]  # (4, D)
        resampled = torch.nn.functional.interpolate(table.T[None], size=8, mode="linear", align_corners=False)[0].T
        expected = embeddings.projection(patchify(skeletons[0], 4, 1)) + embeddings.spatial_position_embeddings[0]
        expected = expected + resampled[None, :, None]
    assert output.last_hidden_state.shape == (1, 1, 8, 25, 32)
    torch.testing.assert_close(output.hidden_states[0], expected.flatten(1, 2))
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
    # Named `gradient_checkpointing_enable` before transformers 5.23 (deprecated since), which setup.cfg admits.
    enable = getattr(model, "activation_checkpointing_enable", None) or model.gradient_checkpointing_enable
    enable()
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


def test_a_registered_attention_function_is_used():
    """`_supports_attention_backend`: a function registered with transformers' AttentionInterface takes over."""
    from transformers import AttentionInterface

    from mamp_hub.layers.transformer import eager_attention_forward

    calls = []

    def counting_attention(*args, **kwargs):
        calls.append(args[1].shape)  # the query, (N, heads, L, head_dim)
        return eager_attention_forward(*args, **kwargs)

    AttentionInterface.register("mamp_test_counting", counting_attention)
    model = MampModel(tiny_config()).eval()
    skeletons = torch.randn(1, 2, 16, 25, 3)
    with torch.no_grad():
        expected = model(skeletons).last_hidden_state
        model.set_attn_implementation("mamp_test_counting")
        torch.testing.assert_close(model(skeletons).last_hidden_state, expected, atol=ATOL, rtol=0)
    assert calls == [(2, 4, 100, 8)] * 2  # once per layer


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
        for key in before:
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
    for (name, ours), theirs in zip(
        classifier.mamp.state_dict().items(), pretrained.mamp.state_dict().values(), strict=True
    ):
        torch.testing.assert_close(ours, theirs, msg=name)
    assert classifier.classifier.fc2.weight.shape == (60, 2048)
    bound = (6 / (2048 + 60)) ** 0.5  # the new head is xavier-uniform initialised, not left at zero
    weight = classifier.classifier.fc2.weight.detach()
    assert weight.abs().max() <= bound
    assert weight.std().item() == pytest.approx(bound / 3**0.5, rel=0.05)


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
        (torch.randn(1, 2, 0, 25, 3), r"frames \(0\) must be a positive multiple"),
        (torch.full((1, 2, 16, 25, 3), float("nan")), "NaN"),
        (torch.full((1, 2, 16, 25, 3), float("inf")), "NaN or infinite"),
        (torch.randn(0, 2, 16, 25, 3), "empty"),
        (torch.ones(1, 2, 16, 25, 3, dtype=torch.bool), "torch.bool"),
        (torch.randn(1, 2, 16, 25, 3).numpy(), "torch.Tensor"),
    ],
)
def test_bad_inputs_raise_clear_errors(config, skeletons, message):
    for model in (MampModel(config), MampForMaskedMotionPrediction(config), MampForSkeletonClassification(config)):
        with pytest.raises(ValueError, match=message):
            model(skeletons)


@pytest.mark.parametrize(
    "noise, message",
    [
        (torch.rand(2, 100), r"shape \(batch \* persons, tokens\) = \(4, 100\), got \(2, 100\)"),
        (torch.full((4, 100), float("nan")), "NaN or values outside"),  # would keep the same tokens in every row
        (torch.rand(4, 100) + 1, "NaN or values outside"),
        (torch.randint(0, 2, (4, 100)), "floating-point.*torch.int64"),
        ([[0.5] * 100] * 4, "floating-point.*list"),
    ],
)
def test_bad_noise_is_refused(config, noise, message):
    with pytest.raises(ValueError, match=message):
        MampForMaskedMotionPrediction(config)(torch.randn(2, 2, 16, 25, 3), noise=noise)


@pytest.mark.parametrize(
    "labels, message",
    [
        (torch.tensor([0.0, 1.0]), "integer class indices.*torch.float32"),  # not truncated to 0 and 1
        (torch.zeros(2, 7, dtype=torch.long), r"shape \(2,\), got torch.int64 of shape \(2, 7\)"),  # one-hot
        (torch.tensor([True, False]), "torch.bool"),
        (torch.tensor([0, 7]), r"labels \[7\] are outside the model's classes \[0, 7\)"),
        (torch.tensor([-1, 3]), r"labels \[-1\] are outside"),
        ([0, 1], "integer class indices.*list"),
    ],
)
def test_bad_labels_are_refused(config, labels, message):
    with pytest.raises(ValueError, match=message):
        MampForSkeletonClassification(config)(torch.randn(2, 2, 16, 25, 3), labels=labels)


def test_ignored_labels_leave_the_loss():
    model = MampForSkeletonClassification(tiny_config(label_smoothing=0.1)).eval()
    skeletons = torch.randn(3, 2, 16, 25, 3)
    with torch.no_grad():
        kept = model(skeletons[:2], labels=torch.tensor([1, 2])).loss
        partly_ignored = model(skeletons, labels=torch.tensor([1, 2, -100])).loss
    torch.testing.assert_close(partly_ignored, kept)


@pytest.mark.parametrize(
    "present_persons, message",
    [
        (torch.tensor([0.0, 1.0]), "LongTensor"),
        (torch.tensor([[0, 1]]), r"shape \(P,\)"),
        (torch.arange(5), "P <= batch \\* persons = 4"),
        (torch.tensor([1, 0]), r"ascending indices in \[0, 4\), got \[1, 0\]"),
        (torch.tensor([0, 4]), r"ascending indices in \[0, 4\), got \[0, 4\]"),
    ],
)
def test_bad_present_persons_are_refused(config, present_persons, message):
    skeletons = torch.randn(2, 2, 16, 25, 3)
    with pytest.raises(ValueError, match=message):
        MampModel(config).eval()(skeletons, present_persons=present_persons)
    with pytest.raises(ValueError, match=message):
        MampForMaskedMotionPrediction(tiny_config(pretraining_skip_absent_persons=True))(
            skeletons, present_persons=present_persons
        )


def test_inputs_too_short_for_the_masking_or_the_motion_stride_are_refused():
    with pytest.raises(ValueError, match="keeps 0 of the 50 tokens of this input visible"):
        MampForMaskedMotionPrediction(tiny_config(mask_ratio=0.99))(torch.randn(1, 1, 8, 25, 3))
    with pytest.raises(ValueError, match="needs at least 2 of them"):
        MampForMaskedMotionPrediction(tiny_config())(torch.randn(1, 1, 4, 25, 3))
    with pytest.raises(ValueError, match=r"motion stride \(5\) must be at least 1 and below the 4 frames"):
        MampForMaskedMotionPrediction(tiny_config(motion_stride=5, masking_strategy="random"))(
            torch.randn(1, 1, 4, 25, 3)
        )


def test_pretraining_accepts_and_ignores_labels(config):
    """A labelled data set can feed pre-training through the same collator."""
    model = MampForMaskedMotionPrediction(config)
    skeletons, noise = torch.randn(2, 2, 16, 25, 3), torch.rand(4, 100)
    torch.testing.assert_close(
        model(skeletons, noise=noise, labels=torch.tensor([0, 1])).loss, model(skeletons, noise=noise).loss
    )


# --- torch.compile -------------------------------------------------------------------------------


@pytest.mark.slow
def test_compiled_models_match_eager_with_fullgraph():
    """No forward breaks the graph (no value-dependent branch, no host read): features with and without the
    absent-slot skip, classification in eval mode, and a pre-training step with its gradients."""
    torch.manual_seed(0)
    skeletons = torch.randn(3, 2, 16, 25, 3)
    skeletons[[0, 2], 1] = 0
    present = torch.tensor([0, 2, 3, 4])
    with torch.no_grad():
        encoder = MampModel(tiny_config()).eval()
        compiled = torch.compile(encoder, fullgraph=True)
        for kwargs in ({}, {"present_persons": present}):
            torch.testing.assert_close(
                compiled(skeletons, **kwargs).last_hidden_state, encoder(skeletons, **kwargs).last_hidden_state
            )
        classifier = MampForSkeletonClassification(tiny_config(classifier_head="finetune")).eval()
        torch.testing.assert_close(
            torch.compile(classifier, fullgraph=True)(skeletons, present_persons=present).logits,
            classifier(skeletons, present_persons=present).logits,
        )
    model, noise = MampForMaskedMotionPrediction(tiny_config()), torch.rand(6, 100)
    eager = model(skeletons, noise=noise)
    eager.loss.backward()
    eager_grad = model.mamp.embeddings.projection.weight.grad.clone()
    model.zero_grad()
    step = torch.compile(model, fullgraph=True)(skeletons, noise=noise)
    step.loss.backward()
    assert torch.equal(step.mask, eager.mask)
    torch.testing.assert_close(step.loss, eager.loss)
    torch.testing.assert_close(model.mamp.embeddings.projection.weight.grad, eager_grad, atol=1e-5, rtol=1e-4)


# --- loading reports ---------------------------------------------------------------------------


def _load_logs(model_class, path, **kwargs) -> tuple[str, str]:
    """What `model_class.from_pretrained(path)` logs: transformers' loading report, and this package's line."""
    from transformers.testing_utils import CaptureLogger
    from transformers.utils import logging

    with (
        CaptureLogger(logging.get_logger("transformers.modeling_utils")) as report,
        CaptureLogger(logging.get_logger("mamp_hub.modeling_mamp")) as ours,
    ):
        model_class.from_pretrained(path, **kwargs)
    return report.out, ours.out


def test_a_new_or_unused_head_is_one_line_and_other_differences_keep_the_report(tmp_path):
    from safetensors.torch import load_file, save_file

    MampForMaskedMotionPrediction(tiny_config()).save_pretrained(tmp_path / "pretrained")
    MampForSkeletonClassification(tiny_config()).save_pretrained(tmp_path / "classifier")

    # A new head put on a pre-trained encoder on purpose (a linear probe, fine-tuning: the recipes) warns of nothing.
    expected = {"classifier_head": "finetune", "expect_new_head": True}
    assert _load_logs(MampForSkeletonClassification, tmp_path / "pretrained", **expected) == ("", "")
    # By accident (a pre-training folder loaded as a classifier to classify with), it is a warning.
    report, ours = _load_logs(MampForSkeletonClassification, tmp_path / "pretrained", classifier_head="finetune")
    assert report == ""
    assert ours == (
        "MampForSkeletonClassification: the checkpoint has no classifier weights, so a new classifier was "
        "initialised; train it before use.\n"
    )
    assert _load_logs(MampModel, tmp_path / "classifier") == ("", "")  # features: the head is just not used

    # An encoder weight missing from the file is not a new head: the full report stays, and lists the head too.
    weights = load_file(tmp_path / "pretrained" / "model.safetensors")
    del weights["mamp.layernorm.weight"]
    save_file(weights, tmp_path / "pretrained" / "model.safetensors", metadata={"format": "pt"})
    report, ours = _load_logs(MampForSkeletonClassification, tmp_path / "pretrained", classifier_head="finetune")
    assert "LOAD REPORT" in report and "layernorm.weight" in report and "classifier.fc1.weight" in report
    assert ours == ""


def test_checkpoints_saved_by_mamp_hub_0_1_load_to_the_same_outputs(tmp_path):
    """tests/fixtures/saved_0.1 was saved at commit 702029a (tests/fixtures/make_saved_checkpoints.py), when the
    decoder's blocks were named `decoder.transformer.layers.*`: they load (no key missing or unused) and compute what
    they computed then; saved again, they load again."""
    saved = FIXTURES / "saved_0.1"
    with safe_open(str(saved / "outputs.safetensors"), "pt") as file:
        expected = {key: file.get_tensor(key) for key in file.keys()}  # noqa: SIM118 (safe_open is not iterable)
    with safe_open(str(saved / "pretraining" / "model.safetensors"), "pt") as file:
        assert any(key.startswith("decoder.transformer.layers.") for key in file.keys())  # noqa: SIM118
    pretraining, info = MampForMaskedMotionPrediction.from_pretrained(saved / "pretraining", output_loading_info=True)
    assert not any(info[kind] for kind in ("missing_keys", "unexpected_keys", "mismatched_keys")), info
    classifier = MampForSkeletonClassification.from_pretrained(saved / "classifier").eval()
    with torch.no_grad():
        outputs = pretraining.eval()(expected["skeleton_values"], noise=expected["noise"])
        torch.testing.assert_close(outputs.logits, expected["pretraining_logits"], rtol=0, atol=ATOL)
        torch.testing.assert_close(outputs.loss, expected["pretraining_loss"], rtol=0, atol=ATOL)
        logits = classifier(expected["skeleton_values"]).logits
        torch.testing.assert_close(logits, expected["classifier_logits"], rtol=0, atol=ATOL)
        pretraining.save_pretrained(tmp_path)
        again = MampForMaskedMotionPrediction.from_pretrained(tmp_path).eval()
        torch.testing.assert_close(again(expected["skeleton_values"], noise=expected["noise"]).logits, outputs.logits)
    fresh = MampForMaskedMotionPrediction(pretraining.config)
    fresh.save_pretrained(tmp_path / "fresh")
    with safe_open(str(tmp_path / "fresh" / "model.safetensors"), "pt") as file:
        assert any(key.startswith("decoder.decoder_layers.") for key in file.keys())  # noqa: SIM118
