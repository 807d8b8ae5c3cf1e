"""What the authors' runs did that one process has to reproduce (issue 14): per-process semi-supervised subsets,
the PKU-MMD pre-training's epoch-301 model (their checkpoint-300), accuracy in both conventions, per-GPU
BatchNorm statistics and per-process seeds.

The end-to-end runs use the tiny test model (width 32, 2 layers, 16 frames) on a few synthetic clips; the
2-process check runs DistributedDataParallel over gloo on the CPU (marked slow).
"""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from accelerate.data_loader import BatchSamplerShard
from conftest import tiny_config
from huggingface_hub import ModelCard
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import BatchSampler, DistributedSampler
from transformers import TrainerCallback

from mamp_hub import MampConfigError, MampForSkeletonClassification, MampSkeletonProcessor
from mamp_hub.data import ArraySkeletonDataset, SkeletonDataCollator
from mamp_hub.layers.heads import MampGroupedBatchNorm
from training.checkpoints import RunRecord, snapshot_folder
from training.config import load_config
from training.recipe import RecipeTrainer, build_model, check_batch_norm_groups, run, training_arguments
from training.sampling import PerProcessSubsetSampler, process_subsets

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "training" / "configs"
SMALL_MODEL = [
    "model.num_frames=16",
    "model.hidden_size=32",
    "model.num_hidden_layers=2",
    "model.intermediate_size=64",
    "model.decoder_hidden_size=32",
    "model.decoder_num_hidden_layers=1",
    "model.decoder_intermediate_size=64",
    "trainer.logging_steps=1",
    "trainer.dataloader_num_workers=0",
    "trainer.use_cpu=true",
]


@pytest.fixture(scope="module")
def synthetic_npz(tmp_path_factory) -> Path:
    from mamp_hub.data.synthetic import write_synthetic_npz

    return Path(write_synthetic_npz(tmp_path_factory.mktemp("data") / "synthetic.npz", num_samples=60, seed=0))


# ------------------------------------------------------------------------------------ semi-supervised sampling


def authors_subset(num_samples: int, ratio: float, seed: int) -> np.ndarray:
    """`feeder_ntu_semi.py`'s subset in a process that seeded NumPy with `seed` (main_finetune.py: seed + rank)."""
    np.random.seed(seed)
    order = np.arange(num_samples)
    np.random.shuffle(order)
    return order[: int(num_samples * ratio)]


def authors_batches(subset: np.ndarray, rank: int, batch_size: int, epoch: int) -> list[list[int]]:
    """The clips of each batch of process `rank` of 2 in `epoch`: torch's DistributedSampler (seed 0, shuffled)
    over the process's own subset, in batches with the last incomplete one dropped, as main_finetune.py."""
    sampler = DistributedSampler(subset.tolist(), num_replicas=2, rank=rank, shuffle=True)
    sampler.set_epoch(epoch)
    return [subset[batch].tolist() for batch in BatchSampler(sampler, batch_size, drop_last=True)]


def test_each_simulated_process_draws_the_authors_subset_with_seed_plus_rank():
    dataset = ArraySkeletonDataset(np.ones((1000, 8, 150), np.float32), np.arange(1000) % 3, layout="ntu_flat")
    subsets = process_subsets(dataset, 0.1, seed=5, processes=2)
    drawn = [np.asarray(subsets.indices)[positions] for positions in subsets.process_positions]
    for rank in range(2):
        np.testing.assert_array_equal(drawn[rank], authors_subset(1000, 0.1, seed=5 + rank))
    # The training set is the union: about twice the labelled clips of one subset.
    assert len(subsets) == len(set(drawn[0]) | set(drawn[1])) > 1.8 * 100
    with pytest.raises(ValueError, match="subset_processes must be at least 1, got 0"):
        process_subsets(dataset, 0.1, seed=0, processes=0)


def test_a_single_process_run_sees_each_step_what_the_authors_two_processes_saw(tmp_path):
    """Through the recipe trainer's own data loader: step k holds process 0's k-th batch then process 1's, every
    epoch; the clips of an epoch are the union of what the two processes would see."""
    num_clips, per_process_batch = 300, 4
    # Each clip's label is its index, so a batch's labels say which clips it holds.
    dataset = ArraySkeletonDataset(np.ones((num_clips, 20, 150), np.float32), np.arange(num_clips), layout="ntu_flat")
    overrides = [
        f"trainer.output_dir={tmp_path}", "trainer.dataloader_num_workers=0", "trainer.use_cpu=true",
        f"schedule.global_batch_size={2 * per_process_batch}", "data.train_fraction=0.1", "trainer.eval_strategy=no",
    ]  # fmt: skip
    config = load_config(CONFIGS / "ntu60_xsub" / "semi_1pct.yaml", overrides)
    assert config["data"]["subset_processes"] == 2
    train = process_subsets(dataset, 0.1, seed=config["data"]["subset_seed"], processes=2)
    trainer = RecipeTrainer(
        model=MampForSkeletonClassification(tiny_config(num_labels=num_clips)),
        args=training_arguments(config, world_size=1),
        train_dataset=train,
        data_collator=SkeletonDataCollator(MampSkeletonProcessor(num_frames=16), training=True, return_labels=True),
        eval_data_collator=None,
        run_record=RunRecord.for_recipe(config),
    )
    loader = trainer.get_train_dataloader()
    subsets = [authors_subset(num_clips, 0.1, seed=rank) for rank in range(2)]
    seen_per_epoch = []
    for epoch in range(2):
        loader.set_epoch(epoch)
        steps = [batch["labels"].tolist() for batch in loader]
        expected = [
            first + second
            for first, second in zip(*(authors_batches(subset, rank, per_process_batch, epoch)
                                       for rank, subset in enumerate(subsets)), strict=True)
        ]  # fmt: skip
        assert steps == expected and len(steps) == 15 // per_process_batch  # 30 clips each: 15 per process
        seen_per_epoch.append(sorted(clip for step in steps for clip in step))
    assert seen_per_epoch[0] != seen_per_epoch[1]  # a new permutation of each subset every epoch


def test_under_torchrun_each_process_gets_the_batches_of_its_simulated_process():
    """accelerate deals the sampler's per-process batches out in turn, so with 2 real processes rank r trains
    exactly on the authors' rank r batches (and the global steps are those of one process)."""
    subsets = [authors_subset(500, 0.1, seed=rank) for rank in range(2)]
    sampler = PerProcessSubsetSampler(subsets, batch_size=6, seed=0)
    sampler.set_epoch(3)
    for rank in range(2):
        shard = BatchSamplerShard(BatchSampler(sampler, 6, drop_last=True), num_processes=2, process_index=rank)
        assert list(shard) == authors_batches(subsets[rank], rank, 6, epoch=3)


def test_per_process_sampler_follows_distributed_sampler_padding_and_refuses_empty_epochs():
    subsets = [np.arange(7) * 10, np.arange(7) * 10 + 1]  # odd lengths: DistributedSampler pads
    sampler = PerProcessSubsetSampler(subsets, batch_size=2, seed=4)
    for rank in range(2):
        reference = DistributedSampler(list(range(7)), num_replicas=2, rank=rank, shuffle=True, seed=4)
        assert sampler.process_indices()[rank].tolist() == subsets[rank][list(reference)].tolist()
    assert len(sampler) == len(list(sampler)) == 2 * 2 * 2
    with pytest.raises(ValueError, match="gets 4 clips per epoch, less than its batch of 5"):
        PerProcessSubsetSampler(subsets, batch_size=5)
    with pytest.raises(ValueError, match=r"same length, got \[3, 7\]"):
        PerProcessSubsetSampler([np.arange(7), np.arange(3)], batch_size=1)


def test_semi_supervised_recipe_checks(tmp_path, synthetic_npz):
    overrides = [f"data.path={synthetic_npz}", "data.dataset=npz", f"trainer.output_dir={tmp_path}"]
    config = load_config(CONFIGS / "ntu60_xsub" / "semi_1pct.yaml", [*overrides, "schedule.global_batch_size=9"])
    with pytest.raises(ValueError, match=r"global_batch_size=9 is not divisible by data\.subset_processes=2"):
        training_arguments(config, world_size=1)
    config = load_config(CONFIGS / "ntu60_xsub" / "finetune.yaml", [*overrides, "data.subset_processes=2"])
    with pytest.raises(
        ValueError, match=r"subset_processes=2 samples per-process .*train_fraction=1\.0 keeps them all"
    ):
        run(config)


# ------------------------------------------------------------------------------------ grouped BatchNorm

DOWNSTREAM = sorted(
    path
    for path in CONFIGS.glob("*/*.yaml")
    if path.parent.name not in ("base", "tiny") and not path.name.startswith("_") and "pretrain" not in path.stem
)


@pytest.mark.parametrize("path", DOWNSTREAM, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_paper_recipes_normalise_over_the_authors_per_gpu_batch(path):
    """Every probe and fine-tuning of the authors ran on 2 GPUs: their per-GPU batch is the BatchNorm group."""
    config = load_config(path)
    per_gpu = {"pku1_xsub": 64, "pku2_xsub": 16}.get(path.parent.name, 128) if path.stem == "linear_probe" else 24
    assert config["model"]["classifier_batch_norm_group_size"] == per_gpu
    assert config["schedule"]["global_batch_size"] == 2 * per_gpu
    assert config["data"].get("subset_processes", 1) == (2 if path.stem.startswith("semi") else 1)
    assert config["seed_per_process"] is True


def test_grouped_batch_norm_is_per_group_batch_norm_with_the_first_groups_running_statistics():
    torch.manual_seed(0)
    hidden = torch.randn(3 * 8, 5) * 3 + 1
    grouped = MampGroupedBatchNorm(5, group_size=8)
    with torch.no_grad():
        grouped.weight.uniform_(0.5, 2.0)
        grouped.bias.uniform_(-1.0, 1.0)
    per_process = [torch.nn.BatchNorm1d(5) for _ in range(3)]
    for norm in per_process:
        norm.load_state_dict(grouped.state_dict())
    for _ in range(2):
        outputs = grouped(hidden)
        expected = torch.cat([norm(chunk) for norm, chunk in zip(per_process, hidden.split(8), strict=True)])
        torch.testing.assert_close(outputs, expected, rtol=0, atol=1e-6)
        for norm in per_process[1:]:  # DDP's buffer broadcast: every process starts from rank 0's statistics
            norm.load_state_dict(per_process[0].state_dict())
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(grouped, name), getattr(per_process[0], name), rtol=0, atol=1e-6)
    whole = torch.nn.BatchNorm1d(5).train()
    whole(hidden)
    assert not torch.allclose(grouped.running_var, whole.running_var)  # the test can tell the two apart
    grouped.eval()
    per_process[0].eval()
    torch.testing.assert_close(grouped(hidden), per_process[0](hidden), rtol=0, atol=0)  # evaluation unchanged
    with pytest.raises(ValueError, match="batch of 20 is not a multiple of classifier_batch_norm_group_size=8"):
        grouped.train()(hidden[:20])


def test_group_size_none_is_plain_batch_norm_and_the_config_checks_it():
    torch.manual_seed(0)
    hidden = torch.randn(12, 6)
    plain, grouped = torch.nn.BatchNorm1d(6, affine=False), MampGroupedBatchNorm(6, None, affine=False)
    assert torch.equal(plain(hidden), grouped(hidden))
    assert torch.equal(plain.running_var, grouped.running_var)
    heads = MampForSkeletonClassification(tiny_config(classifier_head="finetune", classifier_batch_norm_group_size=4))
    assert heads.classifier.batch_norm.group_size == 4
    with pytest.raises(MampConfigError, match=r"classifier_batch_norm_group_size=1.*integer >= 2"):
        tiny_config(classifier_batch_norm_group_size=1)
    with pytest.raises(ValueError, match="group_size=24 does not divide the per-process training batch of 12"):
        check_batch_norm_groups(tiny_config(classifier_batch_norm_group_size=24), per_device_batch=12)


def _ddp_worker(rank: int, port: int, state: dict, batches: list, test_batch: torch.Tensor, out_dir: str) -> None:
    """One of the authors' 2 processes: DDP with its defaults (no SyncBN, buffers broadcast from rank 0)."""
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    results = {}
    for head, config in state["configs"].items():
        model = MampForSkeletonClassification(config)
        model.load_state_dict(state[head])
        if head == "linear_probe":
            model.freeze_encoder()
        ddp = DistributedDataParallel(model)
        optimizer = torch.optim.SGD([p for p in ddp.parameters() if p.requires_grad], lr=0.5)
        logits = []
        for inputs, labels in batches:
            half = len(labels) // 2
            mine = slice(rank * half, (rank + 1) * half)
            output = ddp(skeleton_values=inputs[mine], labels=labels[mine])
            output.loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            logits.append(output.logits.detach())
        trained = {name: value.clone() for name, value in model.state_dict().items()}
        ddp.eval()
        with torch.no_grad():
            evaluated = ddp(skeleton_values=test_batch).logits
        results[head] = {"logits": logits, "eval": evaluated, "trained": trained, "evaluated": model.state_dict()}
    torch.save(results, Path(out_dir) / f"rank{rank}.pt")
    dist.destroy_process_group()


def _train_on_one_process(model: MampForSkeletonClassification, batches: list, test_batch: torch.Tensor) -> dict:
    if model.config.classifier_head == "linear_probe":
        model.freeze_encoder()
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.5)
    logits = []
    for inputs, labels in batches:
        output = model(skeleton_values=inputs, labels=labels)
        output.loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        logits.append(output.logits.detach())
    with torch.no_grad():
        evaluated = model.eval()(skeleton_values=test_batch).logits
    return {"logits": logits, "eval": evaluated, "state": model.state_dict()}


@pytest.mark.slow
def test_grouped_batch_norm_on_one_process_is_the_per_process_batch_norm_of_a_two_process_ddp_run(tmp_path):
    """Same outputs, weights and running statistics (rank 0's, which the authors saved and evaluated with)."""
    group = 4
    torch.manual_seed(0)
    batches = [(torch.randn(2 * group, 2, 16, 25, 3), torch.randint(0, 5, (2 * group,))) for _ in range(3)]
    test_batch = torch.randn(6, 2, 16, 25, 3)
    options = dict(num_labels=5, classifier_hidden_size=16, classifier_dropout=0.0, drop_path_rate=0.0)
    configs = {head: tiny_config(classifier_head=head, **options) for head in ("finetune", "linear_probe")}
    state = {"configs": configs, **{head: MampForSkeletonClassification(c).state_dict() for head, c in configs.items()}}
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    mp.spawn(_ddp_worker, args=(port, state, batches, test_batch, str(tmp_path)), nprocs=2, join=True)
    saved = [torch.load(tmp_path / f"rank{rank}.pt", weights_only=False) for rank in range(2)]
    ranks = {head: [process[head] for process in saved] for head in configs}

    statistics = "classifier.batch_norm.running_var"
    for head in configs:
        runs = {}
        for group_size in (group, None):
            model = MampForSkeletonClassification(
                tiny_config(classifier_head=head, classifier_batch_norm_group_size=group_size, **options)
            )
            model.load_state_dict(state[head])
            runs[group_size] = _train_on_one_process(model, batches, test_batch)
        grouped, (rank0, rank1) = runs[group], ranks[head]
        for step, logits in enumerate(grouped["logits"]):  # the batch holds the processes' batches, rank 0's first
            torch.testing.assert_close(logits, torch.cat([rank0["logits"][step], rank1["logits"][step]]), rtol=1e-4,
                                       atol=1e-5)  # fmt: skip
        torch.testing.assert_close(grouped["state"], rank0["trained"], rtol=1e-4, atol=1e-5)  # the model they saved
        # Rank 1's last training forward updated its own statistics, but DDP broadcast rank 0's before the first
        # evaluation forward: both processes evaluated with rank 0's, as the grouped model does.
        assert not torch.allclose(rank1["trained"][statistics], grouped["state"][statistics])
        assert torch.equal(rank1["evaluated"][statistics], rank0["trained"][statistics])
        assert torch.equal(rank0["eval"], rank1["eval"])
        torch.testing.assert_close(grouped["eval"], rank0["eval"], rtol=1e-4, atol=1e-4)
        # BatchNorm over the whole batch would not be the authors'.
        assert not torch.allclose(runs[None]["state"][statistics], grouped["state"][statistics])


# ------------------------------------------------------------------------------------ PKU-MMD: the epoch-301 model


@pytest.mark.parametrize(
    ("recipe", "pretraining"),
    [
        ("pku1_xsub/linear_probe.yaml", "pku1_xsub/pretrain_mamp.yaml"),
        ("pku2_xsub/linear_probe.yaml", "pku2_xsub/pretrain_mamp.yaml"),
        ("pku2_xsub/transfer_from_pku1_xsub.yaml", "pku1_xsub/pretrain_mamp.yaml"),
    ],
)
def test_pku_probes_and_transfer_start_from_the_pretrainings_epoch_301_snapshot(recipe, pretraining):
    """The authors load checkpoint-300.pth, which main_pretrain.py writes after epoch index 300: 301 epochs."""
    pretrain = load_config(CONFIGS / pretraining)
    assert pretrain["schedule"]["epochs"] == 400 and 301 in pretrain["snapshot_epochs"]
    assert load_config(CONFIGS / recipe)["init_from"] == str(snapshot_folder(pretrain["trainer"]["output_dir"], 301))
    skeletonmae = load_config(CONFIGS / pretraining.replace("pretrain_mamp", "pretrain_skeletonmae"))
    assert skeletonmae["snapshot_epochs"] == [301]  # the baseline's probes and transfer too


def test_other_downstream_recipes_start_from_the_final_pretrained_model():
    for path in CONFIGS.glob("*/*.yaml"):
        if path.parent.name in ("base", "tiny") or path.name.startswith("_") or "pretrain" in path.stem:
            continue
        config = load_config(path)
        init_from = config["init_from"]
        uses_snapshot = path.parent.name.startswith("pku") and path.stem in ("linear_probe", "transfer_from_pku1_xsub")
        assert init_from.endswith("/epoch-301") == uses_snapshot, path


class WeightsAtEpochEnd(TrainerCallback):
    """Copies the weights at the end of every epoch (before any snapshot is written)."""

    def __init__(self):
        self.weights = {}

    def on_epoch_end(self, args, state, control, model=None, **kwargs):
        self.weights[round(state.epoch)] = {k: v.clone() for k, v in model.state_dict().items()}


def test_a_snapshot_epoch_is_kept_as_a_loadable_folder_the_probe_starts_from(tmp_path, synthetic_npz, monkeypatch):
    """The PKU-I pre-training recipe, shrunk: the epoch-1 snapshot outlives checkpoint rotation and holds the
    weights after epoch 1, which the probe recipe loads when init_from names it."""
    monkeypatch.chdir(tmp_path)
    data = ["data.dataset=npz", f"data.path={synthetic_npz}"]
    pretrain = load_config(
        CONFIGS / "pku1_xsub" / "pretrain_mamp.yaml",
        [*SMALL_MODEL, *data, "knn_monitor.every_n_epochs=0", "schedule.epochs=3", "schedule.warmup_epochs=0",
         "schedule.global_batch_size=16", "snapshot_epochs=[1]", "trainer.save_total_limit=1"],
    )  # fmt: skip
    weights = WeightsAtEpochEnd()
    run(pretrain, callbacks=[weights])
    output_dir = Path(pretrain["trainer"]["output_dir"])
    folder = snapshot_folder(output_dir, 1)
    last_step = json.loads((output_dir / "trainer_state.json").read_text())["global_step"]
    assert [p.name for p in output_dir.glob("checkpoint-*")] == [f"checkpoint-{last_step}"]  # rotation: the last
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {p.name for p in folder.iterdir()}
    assert not snapshot_folder(output_dir, 2).exists()

    probe = load_config(CONFIGS / "pku1_xsub" / "linear_probe.yaml", [*data, f"init_from={folder}"])
    encoder = build_model(probe, {i: str(i) for i in range(10)}).mamp.state_dict()
    for name, value in encoder.items():
        torch.testing.assert_close(value, weights.weights[1][f"mamp.{name}"], rtol=0, atol=0)
    assert not torch.equal(encoder["layernorm.weight"], weights.weights[3]["mamp.layernorm.weight"])
    with pytest.raises(ValueError, match=r"snapshot_epochs must lie in \[1, epochs=3\], got 4"):
        load_config(CONFIGS / "pku1_xsub" / "pretrain_mamp.yaml", ["schedule.epochs=3", "snapshot_epochs=[4]"])


# ------------------------------------------------------------------------------------ accuracy, seeds


def test_metrics_and_card_give_the_last_and_the_best_epoch(tmp_path, synthetic_npz):
    """metrics.json and the card hold both conventions; the best is the maximum of the per-epoch evaluations."""
    config = load_config(
        CONFIGS / "ntu60_xsub" / "finetune.yaml",
        [*SMALL_MODEL, "data.dataset=npz", f"data.path={synthetic_npz}", "init_from=null",
         f"trainer.output_dir={tmp_path}", "schedule.epochs=3", "schedule.warmup_epochs=1",
         "schedule.global_batch_size=8", "model.classifier_batch_norm_group_size=4", "model.classifier_hidden_size=16", "trainer.save_strategy=no"],
    )  # fmt: skip
    metrics = run(config)
    history = json.loads((tmp_path / "trainer_state.json").read_text())["log_history"]
    per_epoch = [(entry["eval_top1"], entry["epoch"]) for entry in history if "eval_top1" in entry]
    assert len(per_epoch) == 4  # 3 epochs, and the final evaluation of the last
    assert metrics["eval_top1"] == per_epoch[-1][0]
    assert (metrics["best_eval_top1"], metrics["best_eval_epoch"]) == max(per_epoch, key=lambda item: item[0])
    assert json.loads((tmp_path / "metrics.json").read_text()) == pytest.approx(metrics)
    card = ModelCard.load(tmp_path / "README.md")
    names = [result.metric_name for result in card.data.eval_results]
    assert names[0].endswith("last epoch (these weights)") and names[2].endswith("best epoch (the authors' convention)")
    assert "the paper reports 93.1% (Table 2, MAMP, NTU-60 X-sub; not measured here), also the best epoch" in card.text


def test_per_process_seeds_are_seed_plus_rank_with_a_shared_data_order(tmp_path):
    config = load_config(CONFIGS / "ntu60_xsub" / "finetune.yaml", [f"trainer.output_dir={tmp_path}", "seed=7"])
    assert config["seed_per_process"] is True  # every paper recipe, as the authors' main_*.py
    for rank in range(2):
        args = training_arguments(config, world_size=2, rank=rank)
        assert (args.seed, args.data_seed) == (7 + rank, 7)
    config["seed_per_process"] = False
    assert training_arguments(config, world_size=2, rank=1).seed == 7
