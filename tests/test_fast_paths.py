"""Speed options: the exact ones give the default results, the opt-in one changes only what it says."""

from __future__ import annotations

import torch
from conftest import tiny_config

from mamp_hub import MampForMaskedMotionPrediction, MampModel, modeling_mamp
from mamp_hub.layers.embeddings import patchify
from mamp_hub.skeletons.layouts import present_person_slots


def ntu_mix_batch() -> torch.Tensor:
    """Four samples, two persons: samples 0 and 2 single-person (an all-zero second slot), as most NTU samples."""
    skeletons = torch.randn(4, 2, 16, 25, 3, generator=torch.Generator().manual_seed(0))
    skeletons[[0, 2], 1] = 0
    return skeletons


def test_skipping_absent_persons_in_pretraining_keeps_the_present_rows():
    """The opt-in skip drops the empty slots: every present slot gets exactly its default-path outputs, and the
    loss is the masked mean over the present slots only."""
    skeletons, noise = ntu_mix_batch(), torch.rand(8, 100, generator=torch.Generator().manual_seed(1))
    present = torch.tensor([0, 2, 3, 4, 6, 7])
    model = MampForMaskedMotionPrediction(tiny_config()).eval()
    with torch.no_grad():
        full = model(skeletons, noise=noise)
        model.config.pretraining_skip_absent_persons = True
        skipped = model(skeletons, noise=noise)
    assert skipped.logits.shape[0] == skipped.mask.shape[0] == len(present)
    assert torch.equal(skipped.mask, full.mask[present])
    assert torch.equal(skipped.ids_restore, full.ids_restore[present])
    torch.testing.assert_close(skipped.logits, full.logits[present], atol=1e-5, rtol=0)
    with torch.no_grad():  # the same slots as single-person samples: nothing absent, nothing dropped
        present_only = model(skeletons.flatten(0, 1)[present].unsqueeze(1), noise=noise[present])
    torch.testing.assert_close(skipped.loss, present_only.loss, atol=1e-6, rtol=0)


def test_skipping_absent_persons_trains_and_keeps_an_all_empty_batch():
    model = MampForMaskedMotionPrediction(tiny_config(pretraining_skip_absent_persons=True))
    model(ntu_mix_batch()).loss.backward()
    assert model.mamp.embeddings.projection.weight.grad is not None
    with torch.no_grad():
        empty = model(torch.zeros(2, 2, 16, 25, 3))
    assert empty.mask.shape == (4, 100) and torch.isfinite(empty.loss)


def test_inference_in_blocks_gives_the_one_pass_features(monkeypatch):
    """Eval-mode encoding runs `INFERENCE_BLOCK_TOKENS` tokens at a time (2 sequences here: 4 blocks for the 8
    slots, or for the 6 present slots and the empty one): every slot's features are those of one pass over the
    batch, with and without `present_persons`; recorded hidden states and other devices take the one pass."""
    monkeypatch.setattr(modeling_mamp, "INFERENCE_BLOCK_TOKENS", 200)  # 100 tokens per sequence in tiny_config
    model = MampModel(tiny_config()).eval()
    skeletons = ntu_mix_batch()
    calls = []
    model.encoder.register_forward_hook(lambda module, args, output: calls.append(len(args[0])))
    with torch.no_grad():
        one_pass = model.encode(patchify(skeletons.flatten(0, 1), 4, 1)).view(4, 2, 4, 25, -1)
        calls.clear()
        every_slot = model(skeletons)
        assert calls == [2, 2, 2, 2]
        calls.clear()
        present = model(skeletons, present_persons=present_person_slots(skeletons))
        assert calls == [2, 2, 2, 1]  # 6 present slots and the empty one
        calls.clear()
        recorded = model(skeletons, output_hidden_states=True)
        assert calls == [8]
        calls.clear()
        model.to("meta")(skeletons.to("meta"))  # other devices than the CPU: one pass
        assert calls == [8]
    torch.testing.assert_close(every_slot.last_hidden_state, one_pass, atol=1e-6, rtol=0)
    torch.testing.assert_close(present.last_hidden_state, one_pass, atol=1e-6, rtol=0)
    torch.testing.assert_close(recorded.last_hidden_state, one_pass, atol=1e-6, rtol=0)
