"""`pipeline("skeleton-action-recognition")` and `pipeline("skeleton-feature-extraction")`: what they return is what
the processor and the model give on the same clips, for every kind of input; examples/pipeline.py runs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import load_example, run_saved, save_tiny_checkpoint
from transformers import pipeline

from mamp_hub import (
    MampForSkeletonClassification,
    MampModel,
    MampSkeletonProcessor,
    SkeletonActionRecognitionPipeline,
    SkeletonFeatureExtractionPipeline,
)
from mamp_hub.skeletons import to_ntu

ROOT = Path(__file__).resolve().parents[1]
LABELS = {0: "wave", 1: "kick", 2: "sit down", 3: "stand up", 4: "clap", 5: "jump", 6: "point"}
# Clips batched together and one by one differ by float32 rounding in the model's batched products.
ATOL = 1e-5


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """A tiny random classifier and its processor, saved as a checkpoint folder is."""
    folder = tmp_path_factory.mktemp("classifier")
    return save_tiny_checkpoint(folder, num_labels=len(LABELS), id2label=LABELS, classifier_head="finetune")


@pytest.fixture(scope="module")
def classifier(checkpoint) -> SkeletonActionRecognitionPipeline:
    return pipeline("skeleton-action-recognition", model=str(checkpoint))


def clips(count: int, seed: int = 0) -> list[np.ndarray]:
    """NTU clips of different lengths: (frames, 25, 3), one person."""
    rng = np.random.default_rng(seed)
    return [rng.normal(size=(40 + 17 * index, 25, 3)).astype(np.float32) for index in range(count)]


def as_scores(predictions: list[dict]) -> dict[str, float]:
    return {prediction["label"]: prediction["score"] for prediction in predictions}


def assert_top_k_of(predictions: list[dict], logits: torch.Tensor, k: int = 5) -> None:
    """`predictions` are the k best labels of one clip's (num_labels,) logits, with their softmax probabilities."""
    probabilities = logits.softmax(-1)
    expected = {LABELS[i]: probabilities[i].item() for i in probabilities.topk(k).indices.tolist()}
    assert list(as_scores(predictions)) == list(expected)
    np.testing.assert_allclose(list(as_scores(predictions).values()), list(expected.values()), rtol=0, atol=ATOL)


def test_one_clip_gives_the_top_5_softmax_scores_of_the_model(checkpoint, classifier):
    assert isinstance(classifier, SkeletonActionRecognitionPipeline)
    assert classifier.feature_extractor.to_dict() == MampSkeletonProcessor.from_pretrained(checkpoint).to_dict()
    clip = clips(1)[0]
    predictions = classifier(clip)
    assert len(predictions) == 5 and all(set(p) == {"score", "label"} for p in predictions)
    scores = [p["score"] for p in predictions]
    assert scores == sorted(scores, reverse=True) and sum(scores) <= 1
    assert_top_k_of(predictions, run_saved(checkpoint, [clip]).logits[0])
    assert classifier(torch.from_numpy(clip)) == predictions

    every = classifier(clip, top_k=100)  # at most num_labels
    assert len(every) == len(LABELS) and sum(p["score"] for p in every) == pytest.approx(1, abs=1e-5)
    logits = classifier(clip, top_k=2, function_to_apply="none")
    expected = run_saved(checkpoint, [clip]).logits[0].topk(2).values
    torch.testing.assert_close(torch.tensor([p["score"] for p in logits]), expected)


@pytest.mark.parametrize("batch_size", [1, 2, 8])
def test_a_batch_gives_one_list_per_clip(checkpoint, classifier, batch_size):
    batch = clips(5)
    logits = run_saved(checkpoint, batch).logits
    for inputs in (batch, tuple(batch)):
        results = classifier(inputs, batch_size=batch_size)
        assert len(results) == len(batch)
        for predictions, clip_logits in zip(results, logits, strict=True):
            assert_top_k_of(predictions, clip_logits)


def test_a_list_is_a_list_of_clips_each_read_on_its_own(checkpoint, classifier):
    """A one-person (frames, 25, 3) clip and a two-person (2, frames, 25, 3) clip in one list: each is read as the
    processor reads a list's clips (the second alone would be ambiguous: two persons, or a batch of two clips)."""
    one, other = clips(2)
    two = np.stack([other, other[::-1]])
    logits = run_saved(checkpoint, [one, two]).logits
    for batch_size in (1, 2):
        results = classifier([one, two], batch_size=batch_size)
        for predictions, clip_logits in zip(results, logits, strict=True):
            assert_top_k_of(predictions, clip_logits)


def test_an_array_or_file_of_several_clips_is_a_batch(checkpoint, classifier, tmp_path):
    rows = np.zeros((3, 300, 150), np.float32)  # the rows of an NTU .npz file: zero-padded, two person slots
    for index, clip in enumerate(clips(3)):
        rows[index, : len(clip), :75] = clip.reshape(len(clip), 75)
    logits = run_saved(checkpoint, rows).logits

    np.savez(tmp_path / "ntu.npz", x_train=rows[:1], x_test=rows, y_test=np.eye(3))
    np.savez(tmp_path / "x.npz", x=rows)
    np.savez(tmp_path / "named.npz", clips=rows, x=rows[:1])
    np.save(tmp_path / "batch.npy", rows)
    inputs = [
        (rows, {}),
        (torch.from_numpy(rows), {}),
        (tmp_path / "ntu.npz", {}),  # x_test
        (str(tmp_path / "x.npz"), {}),
        (tmp_path / "named.npz", {"npz_key": "clips"}),
        (tmp_path / "batch.npy", {"batch_size": 2}),
    ]
    for batch, kwargs in inputs:
        results = classifier(batch, **kwargs)
        assert len(results) == 3, batch
        for predictions, clip_logits in zip(results, logits, strict=True):
            assert_top_k_of(predictions, clip_logits)


def test_a_npy_path_is_one_clip(checkpoint, classifier, tmp_path):
    clip = clips(1)[0]
    np.save(tmp_path / "clip.npy", clip)
    np.savez(tmp_path / "clip.npz", x_test=clip)
    expected = run_saved(checkpoint, [clip]).logits[0]
    for path in (tmp_path / "clip.npy", str(tmp_path / "clip.npy"), tmp_path / "clip.npz"):
        assert_top_k_of(classifier(path), expected)
    assert len(classifier([tmp_path / "clip.npy", clip])) == 2


def test_another_joint_layout_is_to_ntu_then_the_processor_and_model(checkpoint, classifier, tmp_path):
    rng = np.random.default_rng(1)
    h36m = (rng.normal(size=(60, 17, 3)) * 0.3 + [0, 0, 3]).astype(np.float32)  # camera space, metres
    ntu = to_ntu(h36m, "h36m")
    ntu = ntu - ntu[0, 1]  # centred on the first frame's spine middle, as NTU's files are
    expected = run_saved(checkpoint, [ntu]).logits[0]
    assert_top_k_of(classifier(h36m, joint_layout="h36m"), expected)
    assert_top_k_of(classifier([h36m * 1000], joint_layout="h36m", joint_units="mm")[0], expected)
    # Set when the pipeline is made, or saved with the processor: the same.
    assert_top_k_of(pipeline("skeleton-action-recognition", model=str(checkpoint), joint_layout="h36m")(h36m), expected)
    folder = tmp_path / "h36m"
    MampForSkeletonClassification.from_pretrained(checkpoint).save_pretrained(folder)
    MampSkeletonProcessor(num_frames=16, joint_layout="h36m").save_pretrained(folder)
    h36m_classifier = pipeline("skeleton-action-recognition", model=str(folder))
    assert_top_k_of(h36m_classifier(h36m), expected)
    assert_top_k_of(h36m_classifier(ntu, joint_layout="ntu"), expected)  # the call's layout wins


def test_a_call_option_changes_what_it_names_and_nothing_else(checkpoint, tmp_path):
    """A saved (or pipeline-wide) `joint_units="mm"` holds when a call names the same `joint_layout`; a different
    layout drops it and says so."""
    rng = np.random.default_rng(2)
    h36m = (rng.normal(size=(60, 17, 3)) * 0.3 + [0, 0, 3]).astype(np.float32)
    folder = tmp_path / "h36m_mm"
    MampForSkeletonClassification.from_pretrained(checkpoint).save_pretrained(folder)
    MampSkeletonProcessor(num_frames=16, joint_layout="h36m", joint_units="mm").save_pretrained(folder)
    expected = pipeline("skeleton-action-recognition", model=str(checkpoint), joint_layout="h36m")(h36m)
    saved = pipeline("skeleton-action-recognition", model=str(folder))
    made_with = pipeline("skeleton-action-recognition", model=str(checkpoint), joint_layout="h36m", joint_units="mm")
    for classifier in (saved, made_with):
        assert as_scores(classifier(h36m * 1000)) == pytest.approx(as_scores(expected), abs=ATOL)
        assert as_scores(classifier(h36m * 1000, joint_layout="h36m")) == pytest.approx(as_scores(expected), abs=ATOL)
        swapped = h36m[:, :, [0, 2, 1]] * 1000  # y and z swapped: only the axes change
        scores = as_scores(classifier(swapped, joint_axes="-x z -y"))
        assert scores == pytest.approx(as_scores(expected), abs=ATOL)
        with pytest.warns(UserWarning, match=r"joint_layout='smpl' replaces .*'h36m', so its joint_units='mm'"):
            classifier(np.ones((30, 24, 3), np.float32), joint_layout="smpl")
        assert classifier.feature_extractor.joint_units == ("mm" if classifier is saved else None)  # unchanged


def test_the_absent_persons_are_skipped(classifier):
    seen = []
    hook = classifier.model.register_forward_pre_hook(
        lambda module, args, kwargs: seen.append(kwargs.get("present_persons")), with_kwargs=True
    )
    try:
        classifier(clips(3), batch_size=3)
    finally:
        hook.remove()
    assert [persons.tolist() for persons in seen] == [[0, 2, 4]]  # one batch; the second slots are empty


def test_feature_extraction_gives_the_pooled_embedding(checkpoint):
    embedder = pipeline("skeleton-feature-extraction", model=str(checkpoint))
    assert isinstance(embedder, SkeletonFeatureExtractionPipeline) and isinstance(embedder.model, MampModel)
    batch = clips(3)
    outputs = run_saved(checkpoint, batch, model_class=MampModel)
    embedding = embedder(batch[0])
    assert len(embedding) == 32
    np.testing.assert_allclose(embedding, outputs.pooler_output[0].numpy(), rtol=0, atol=ATOL)
    for features, expected in zip(
        embedder(batch, batch_size=2, return_tensors=True), outputs.pooler_output, strict=True
    ):
        torch.testing.assert_close(features, expected, rtol=0, atol=ATOL)
    tokens = embedder(batch[0], pool=False, return_tensors=True)
    torch.testing.assert_close(tokens, outputs.last_hidden_state[0], rtol=0, atol=ATOL)  # (M, segments, joints, D)


@pytest.mark.parametrize(
    ("make_input", "kwargs", "message"),
    [
        (lambda path: {"x": 1}, {}, "Got input of type dict where skeletons were expected; pass a numpy array"),
        (lambda path: [np.ones((30, 25, 3)), 7], {}, "Got input of type int where skeletons"),
        (lambda path: "walking", {}, "'walking' is not a .npy or .npz file"),
        (lambda path: path / "missing.npy", {}, "There is no file at .*missing.npy"),
        (lambda path: path / "text.npy", {}, "text.npy' is not a NumPy array: it does not start with a valid .npy"),
        (lambda path: path / "clip.npz", {"npz_key": "x_train"}, r"has no array 'x_train' \(it has \['y'\]\)"),
        (lambda path: path / "clip.npz", {}, r"has no array 'x_test' or 'x'"),
        (lambda path: [], {}, "Got no clips"),
        (lambda path: [np.zeros((3, 30, 150))], {}, "holds a batch of 3 clips"),
        (lambda path: np.zeros((30, 24, 3)), {}, "fits no supported layout"),
        (lambda path: np.zeros((2, 30, 25, 3)), {}, "ambiguous.*pass `layout=`"),
        (lambda path: np.zeros((30, 25, 3)), {"top_k": 0}, "`top_k` must be a positive integer, got 0"),
        (lambda path: np.zeros((30, 25, 3)), {"function_to_apply": "relu"}, "function_to_apply must be one of"),
        (lambda path: np.zeros((30, 25, 3)), {"joint_layout": "bvh"}, "`joint_layout` must be 'ntu' or a skeleton"),
        (lambda path: np.zeros((30, 25, 3)), {"joint_units": "mm"}, r"\['joint_units'\] apply to another joint_layout"),
    ],
)
def test_bad_inputs_say_what_to_pass(classifier, tmp_path, make_input, kwargs, message):
    (tmp_path / "text.npy").write_text("not an array")
    np.savez(tmp_path / "clip.npz", y=np.zeros(3))
    with pytest.raises(ValueError, match=message):
        classifier(make_input(tmp_path), **kwargs)


@pytest.mark.parametrize(
    ("typo", "meant"),
    [("batchsize", "batch_size"), ("topk", "top_k"), ("joint_layot", "joint_layout"), ("npzkey", "npz_key")],
)
def test_a_misspelt_option_names_the_closest_and_every_option(checkpoint, classifier, typo, meant):
    message = rf"The skeleton-action-recognition pipeline got unknown options \['{typo}'\] \(did you mean '{meant}'\?\)"
    with pytest.raises(TypeError, match=message) as error:
        classifier(clips(1)[0], **{typo: 2})
    listed = ["batch_size", "function_to_apply", "joint_axes", "joint_layout", "joint_units", "layout", "npz_key"]
    assert all(f"'{option}'" in str(error.value) for option in [*listed, "num_workers", "top_k"])
    with pytest.raises(TypeError, match=message):  # given to pipeline(), for every call
        pipeline("skeleton-action-recognition", model=str(checkpoint), **{typo: 2})
    embedder = pipeline("skeleton-feature-extraction", model=str(checkpoint))
    with pytest.raises(TypeError, match=r"unknown options \['pol'\] \(did you mean 'pool'\?\).*'return_tensors'"):
        embedder(clips(1)[0], pol=False)


def test_the_options_listed_are_those_the_parameter_methods_take(classifier):
    """The list comes from the signatures: an option added to `_postprocess_parameters` (or to another method in
    `_option_readers`) is listed, and accepted, with no list to update."""

    class WithThreshold(SkeletonActionRecognitionPipeline):
        def _postprocess_parameters(self, min_score: float | None = None, **kwargs):
            return super()._postprocess_parameters(**kwargs)

    extended = WithThreshold(model=classifier.model, feature_extractor=classifier.feature_extractor, min_score=0.5)
    assert set(extended._call_options()) == {*classifier._call_options(), "min_score"}
    with pytest.raises(TypeError, match=r"\['min_scor'\] \(did you mean 'min_score'\?\)"):
        extended(clips(1)[0], min_scor=0.5)


@pytest.mark.parametrize("frames", [1, 3])
def test_a_clip_too_short_to_show_motion_is_refused(checkpoint, classifier, frames):
    """Fewer valid frames than one time segment (temporal_patch_size = 4): the model would see a still pose."""
    short = np.random.default_rng(0).normal(size=(frames, 25, 3))
    padded = np.concatenate([short, np.zeros((60, 25, 3))])  # the zero frames of an NTU row do not count
    message = (
        rf"has {frames} valid \(non-zero\) frames?, fewer than one time segment of the model \(temporal_patch_size=4"
    )
    for inputs in (short, padded, [clips(1)[0], short]):
        with pytest.raises(ValueError, match=message):
            classifier(inputs)
    with pytest.raises(ValueError, match=r"has 0 valid \(non-zero\) frames"):
        pipeline("skeleton-feature-extraction", model=str(checkpoint))(np.zeros((30, 25, 3)))
    assert len(classifier(np.random.default_rng(0).normal(size=(4, 25, 3)))) == 5  # one segment is enough


def test_a_model_without_its_processor_or_of_another_task_is_refused(checkpoint, tmp_path):
    MampForSkeletonClassification.from_pretrained(checkpoint).save_pretrained(tmp_path)  # no processor
    with pytest.raises(ValueError, match=r"found no skeleton processor.*MampSkeletonProcessor\(num_frames=16\)"):
        pipeline("skeleton-action-recognition", model=str(tmp_path))
    with pytest.raises(ValueError, match="runs MampForSkeletonClassification, got MampModel"):
        pipeline(
            "skeleton-action-recognition",
            model=MampModel.from_pretrained(checkpoint),
            feature_extractor=MampSkeletonProcessor(num_frames=16),
        )


def test_a_processor_that_fails_to_load_is_reported_with_its_cause(checkpoint, tmp_path):
    """transformers hides why it could not load a pipeline's feature extractor; the pipeline says it."""
    MampForSkeletonClassification.from_pretrained(checkpoint).save_pretrained(tmp_path)
    saved = (checkpoint / "preprocessor_config.json").read_text()
    (tmp_path / "preprocessor_config.json").write_text(saved.replace('"num_frames": 16', '"num_frames": -16'))
    with pytest.raises(ValueError, match=r"could not be loaded: .*`num_frames` must be a positive integer, got -16"):
        pipeline("skeleton-action-recognition", model=str(tmp_path))


def test_the_example_runs_the_pipeline_on_an_array_a_list_and_a_path(tmp_path, capsys):
    results = load_example("pipeline").main(["--output-dir", str(tmp_path), "--top-k", "3"])
    assert results["array"] == results["path"]
    assert [len(predictions) for predictions in results["list"]] == [3, 3]
    np.testing.assert_allclose(
        [p["score"] for p in results["list"][0]], [p["score"] for p in results["array"]], rtol=0, atol=ATOL
    )
    output = capsys.readouterr().out
    assert "RANDOM weights" in output and "scores are meaningless" in output and "path: synthetic:" in output
    assert (tmp_path / "clip.npy").is_file()


@pytest.mark.slow
def test_the_example_runs_as_a_script(tmp_path):
    completed = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "pipeline.py"), "--output-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr
    assert completed.stdout.count("synthetic:") == 4 * 5  # array, two list clips, path: top-5 each
