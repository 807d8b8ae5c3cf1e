"""Feature extraction and pre-training step: throughput and peak memory of mamp-hub, and of the authors' code
side by side when a checkout of it is given.

    python benchmarks/bench_model.py                                  # mamp-hub only
    python benchmarks/bench_model.py --official-repo /path/to/MAMP    # + the authors' code, same weights
    python benchmarks/bench_model.py --device cuda --batch-size 32    # on a GPU

Workload (the paper's default model): hidden 256, 8 encoder layers, 8 heads, 120 frames, 25 joints, segments of
4 frames (750 tokens per body), a 5-layer decoder (the paper's default; the authors' NTU-60 configs also ship a
3-layer one), 90% motion-aware masking. Batch 32 with two body slots, of which round(32 * 49/60) = 26 samples
(seeded) have an all-zero second body, as in NTU-60.

- feature extraction: eval mode under `torch.inference_mode()`, skeletons -> token features and pooled clip
  embedding (the authors' classification transformer with its head replaced by the same mean pooling). mamp-hub is
  called as the processor and the pipelines call it, with the processor's `present_persons` (38 of the 64 slots
  present: those are encoded, plus one empty slot whose features fill the absent ones); the "every slot encoded" row
  leaves them out, as the authors' code and the ONNX graph do.
- pre-training step: train mode, forward + loss + backward + AdamW step (betas 0.9/0.95, weight decay 0.05 on
  matrices, as the authors' recipe), the same optimizer code for both implementations.

Every row counts the matmul FLOPs of its call (benchmarks/flops.py); `run_all.py` sets them against the matmul peak it
measures. `--row-note` appends a note to the variant of every row (`run_all.py` marks the rows it times in a process
of their own with glibc's `GLIBC_TUNABLES` set to keep freed memory).

With `--official-repo`, the authors' models are built from that checkout and their weights are converted into
ours (`mamp_hub.tools.convert.convert_state_dict`); the script checks that the outputs agree (features to 1e-4, the
pre-training loss, mask and predictions with the same random numbers) before it times anything.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import (
    NTU60_XSUB_TRAIN_SAMPLES,
    Result,
    add_common_arguments,
    configure_torch,
    format_table,
    import_official,
    interleaved_timings,
    machine_info,
    measure_memory_here,
    measure_memory_in_subprocess,
    median_throughput,
    ntu_mix_batch,
    quiet,
    result_row,
    write_json,
)
from flops import encoded_slots, feature_flops_per_slot, pretraining_flops_per_sequence

from mamp_hub import MampConfig, MampForMaskedMotionPrediction, MampModel
from mamp_hub.skeletons.layouts import present_person_slots
from mamp_hub.tools.convert import convert_state_dict

FEATURES, PRETRAINING = "feature extraction", "pre-training step"
TASKS = {"features": FEATURES, "pretraining": PRETRAINING}  # command-line name -> table name
OPTIONS_THAT_CHANGE_NUMBERS = ("skip absent persons", "torch.compile")
EVERY_SLOT = "every slot encoded"  # feature extraction without `present_persons`: the authors' work


@dataclass(frozen=True)
class Case:
    """One configuration to time."""

    task: str
    implementation: str  # "authors" or "mamp-hub"
    attention: str  # "eager" or "sdpa"
    dtype: str  # "float32" or "bfloat16" (autocast)
    options: str = ""  # "", "skip absent persons" or "torch.compile"

    @property
    def name(self) -> str:
        return "/".join(
            part.replace(" ", "-")
            for part in (self.task, self.implementation, self.attention, self.dtype, self.options)
            if part
        )


def model_config(args: argparse.Namespace, **overrides) -> MampConfig:
    return MampConfig(num_frames=args.num_frames, decoder_num_hidden_layers=args.decoder_layers, **overrides)


def list_cases(args: argparse.Namespace) -> list[Case]:
    cases = []
    for task in (TASKS[key] for key in args.tasks):
        if args.official_repo:
            # The authors' code runs float32 on a CPU (its AMP switch is CUDA autocast); on a GPU time it in each dtype.
            for dtype in args.dtypes if args.device.startswith("cuda") else ["float32"]:
                cases.append(Case(task, "authors", "eager", dtype))
        for dtype in args.dtypes:
            for attention in args.attention:
                if attention == "eager" and dtype != "float32":
                    continue  # eager attention is the reference point; the dtype comparison is made with SDPA
                cases.append(Case(task, "mamp-hub", attention, dtype))
        if task == FEATURES:
            cases.append(Case(task, "mamp-hub", "sdpa", "float32", EVERY_SLOT))
        if task == PRETRAINING and args.skip_absent:
            cases.append(Case(task, "mamp-hub", "sdpa", "float32", "skip absent persons"))
        if args.compile:
            cases.append(Case(task, "mamp-hub", "sdpa", "float32", "torch.compile"))
    return cases


# ------------------------------------------------------------------------------------------------ models


class PooledFeatures(nn.Module):
    """Stands in for the authors' classification head: returns the token features and their mean over persons,
    time and joints (what `MampModel` returns as `last_hidden_state` and `pooler_output`)."""

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return features, features.mean(dim=(1, 2, 3))


def build_authors_model(official, task: str, config: MampConfig) -> nn.Module:
    """The authors' transformer with the sizes of `config` (the keyword names are theirs)."""
    sizes = {
        "dim_in": config.num_channels,
        "dim_feat": config.hidden_size,
        "depth": config.num_hidden_layers,
        "num_heads": config.num_attention_heads,
        "mlp_ratio": config.intermediate_size // config.hidden_size,
        "num_frames": config.num_frames,
        "num_joints": config.num_joints,
        "patch_size": config.joint_patch_size,
        "t_patch_size": config.temporal_patch_size,
        "qkv_bias": config.qkv_bias,
    }
    if task == FEATURES:
        model = quiet(official.classification.Transformer, num_classes=60, protocol="linprobe", **sizes)
        model.head = PooledFeatures()
        return model
    return quiet(
        official.pretraining.Transformer,
        decoder_dim_feat=config.decoder_hidden_size,
        decoder_depth=config.decoder_num_hidden_layers,
        norm_skes_loss=config.norm_target,
        **sizes,
    )


def build_model(case: Case, args: argparse.Namespace, official) -> nn.Module:
    """The case's model on `args.device`, freshly initialised (seed 0)."""
    torch.manual_seed(0)
    if case.implementation == "authors":
        return build_authors_model(official, case.task, model_config(args)).to(args.device)
    if case.task == FEATURES:
        model = MampModel(model_config(args))
    else:
        model = MampForMaskedMotionPrediction(
            model_config(args, pretraining_skip_absent_persons=case.options == "skip absent persons")
        )
    model.set_attn_implementation(case.attention)
    model.to(args.device)
    return torch.compile(model) if case.options == "torch.compile" else model


def adamw(model: nn.Module) -> torch.optim.AdamW:
    """The authors' pre-training optimizer: AdamW, betas (0.9, 0.95), weight decay on matrices only."""
    decayed = [p for p in model.parameters() if p.ndim > 1]
    others = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decayed, "weight_decay": 0.05}, {"params": others, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=1.5e-4, betas=(0.9, 0.95))


def make_call(case: Case, model: nn.Module, skeletons: torch.Tensor, config: MampConfig, device: str) -> Callable:
    """One timed call of the case: a batch of feature extraction, or one optimizer step (from a fresh optimizer)."""
    autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=case.dtype == "bfloat16")
    authors_input = skeletons.permute(0, 4, 2, 3, 1).contiguous()  # their layout (N, C, T, V, M)
    present = None if case.options == EVERY_SLOT else present_person_slots(skeletons)

    def forward() -> torch.Tensor:
        """Features (feature extraction) or the loss (pre-training)."""
        if case.implementation == "mamp-hub":
            return model(skeletons, present_persons=present) if case.task == FEATURES else model(skeletons).loss
        if case.task == FEATURES:
            return model(authors_input)
        return model(
            authors_input,
            mask_ratio=config.mask_ratio,
            motion_stride=config.motion_stride,
            motion_aware_tau=config.motion_aware_tau,
        )[0]

    if case.task == FEATURES:
        model.eval()

        def extract():
            with torch.inference_mode(), autocast:
                return forward()

        return extract

    model.train()
    optimizer = adamw(model)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with autocast:
            loss = forward()
        loss.backward()
        optimizer.step()

    return step


# ---------------------------------------------------------------------------------------------- parity


def copy_authors_weights(authors: nn.Module, ours: nn.Module, task: str) -> None:
    converted, _ = convert_state_dict(authors.state_dict())
    if task == FEATURES:
        converted = {k.removeprefix("mamp."): v for k, v in converted.items()}
    getattr(ours, "_orig_mod", ours).load_state_dict(converted, strict=True)  # `_orig_mod`: under torch.compile


@torch.no_grad()
def check_compiled(task: str, compiled: nn.Module, plain: nn.Module, skeletons: torch.Tensor) -> str:
    """Raise unless the compiled model gives the plain model's outputs (same weights, same masks) to 1e-4."""
    if task == FEATURES:
        compiled.eval(), plain.eval()
        error = (compiled(skeletons).last_hidden_state - plain(skeletons).last_hidden_state).abs().max().item()
    else:
        compiled.train(), plain.train()
        # Explicit masking noise: compiled code draws its own random numbers (inductor's generator).
        noise = torch.rand(
            skeletons.shape[0] * skeletons.shape[1],
            plain.config.num_temporal_patches * plain.config.num_joint_patches,
            device=skeletons.device,
        )
        error = (compiled(skeletons, noise=noise).logits - plain(skeletons, noise=noise).logits).abs().max().item()
    if error > 1e-4:
        raise AssertionError(f"{task}: the compiled model differs from the plain one by {error:.2e}")
    return f"compiled and plain models agree to {error:.1e}"


@torch.no_grad()
def check_parity(task: str, authors: nn.Module, ours: nn.Module, skeletons: torch.Tensor, config: MampConfig) -> str:
    """Raise unless the two implementations compute the same thing (float32); returns a one-line summary."""
    authors_input = skeletons.permute(0, 4, 2, 3, 1).contiguous()
    if task == FEATURES:
        authors.eval(), ours.eval()
        features, pooled = authors(authors_input)
        output = ours(skeletons)
        error = max(
            (features - output.last_hidden_state).abs().max().item(), (pooled - output.pooler_output).abs().max().item()
        )
        if error > 1e-4:
            raise AssertionError(f"feature extraction: mamp-hub and the authors' code differ by {error:.2e}")
        return f"features agree to {error:.1e}"
    authors.train(), ours.train()
    torch.manual_seed(0)  # both draw the masking noise with one torch.rand call of the same shape
    loss, prediction, mask = authors(
        authors_input,
        mask_ratio=config.mask_ratio,
        motion_stride=config.motion_stride,
        motion_aware_tau=config.motion_aware_tau,
    )
    torch.manual_seed(0)
    output = ours(skeletons)
    error = (prediction - output.logits).abs().max().item()
    if not torch.equal(mask, output.mask) or error > 1e-4 or abs(loss.item() - output.loss.item()) > 1e-5:
        raise AssertionError(
            f"pre-training: masks equal {torch.equal(mask, output.mask)}, predictions differ by {error:.2e}, "
            f"losses {loss.item():.6f} vs {output.loss.item():.6f}"
        )
    return f"same mask, predictions agree to {error:.1e}, loss {output.loss.item():.6f} in both"


# ------------------------------------------------------------------------------------------------- runs


def run(args: argparse.Namespace, log=print) -> list[Result]:
    configure_torch(args.threads)
    official = import_official(args.official_repo) if args.official_repo else None
    config = model_config(args)
    skeletons = ntu_mix_batch(args.batch_size, args.num_frames, seed=args.seed).to(args.device)
    results = []
    for task in (TASKS[key] for key in args.tasks):
        cases = [case for case in list_cases(args) if case.task == task]
        log(f"{task}: {len(cases)} configurations, batch {args.batch_size}")
        models = {case: build_model(case, args, official) for case in cases}
        authors = next((model for case, model in models.items() if case.implementation == "authors"), None)
        if authors is not None:
            for case, model in models.items():
                if case.implementation == "mamp-hub":
                    copy_authors_weights(authors, model, task)
                    if case.options not in OPTIONS_THAT_CHANGE_NUMBERS:
                        log(f"  parity {case.name}: {check_parity(task, authors, model, skeletons, config)}")
        for case, model in models.items():
            if case.options == "torch.compile":
                plain = models[Case(task, "mamp-hub", "sdpa", "float32")]
                log(f"  {case.name} (compiles first): {check_compiled(task, model, plain, skeletons)}")
        calls = {case.name: make_call(case, model, skeletons, config, args.device) for case, model in models.items()}
        seconds = interleaved_timings(calls, args.warmup, args.repeats, args.device, log)
        del models, calls
        for case in cases:
            result = Result(
                task=task,
                implementation=case.implementation,
                attention=case.attention,
                dtype=case.dtype,
                options=", ".join(part for part in (case.options, args.row_note) if part),
                unit="samples/s" if task == FEATURES else "sequences/s",
                seconds=[round(s, 4) for s in seconds[case.name]],
                items_per_call=args.batch_size,
                throughput=median_throughput(seconds[case.name], args.batch_size),
                exact=case.options not in OPTIONS_THAT_CHANGE_NUMBERS,
                flops_per_call=flops_per_call(case, config, skeletons),
            )
            if args.memory:
                result.__dict__.update(measure_memory_in_subprocess(__file__, case.name, memory_argv(args), log))
            results.append(result)
    return results


def flops_per_call(case: Case, config: MampConfig, skeletons: torch.Tensor) -> int:
    """Matmul FLOPs of one call of the case on the `(B, M, T, V, C)` batch (benchmarks/flops.py): the person slots
    it encodes (all, or the present ones and one empty slot) or trains on (all, or the present ones)."""
    slots, present = skeletons.shape[0] * skeletons.shape[1], len(present_person_slots(skeletons))
    if case.task == FEATURES:
        given = case.implementation == "mamp-hub" and case.options != EVERY_SLOT
        return encoded_slots(present, slots, given) * feature_flops_per_slot(config)
    trained = present if case.options == "skip absent persons" else slots
    return trained * pretraining_flops_per_sequence(config)


def measure_one_case_memory(args: argparse.Namespace) -> dict[str, float]:
    """`--memory-case`: build one configuration in this (fresh) process and measure its peak memory."""
    configure_torch(args.threads)
    official = import_official(args.official_repo) if args.official_repo else None
    case = next(case for case in list_cases(args) if case.name == args.memory_case)

    def build() -> Callable:
        skeletons = ntu_mix_batch(args.batch_size, args.num_frames, seed=args.seed).to(args.device)
        model = build_model(case, args, official)
        return make_call(case, model, skeletons, model_config(args), args.device)

    return measure_memory_here(build, args.device)


def memory_argv(args: argparse.Namespace) -> list[str]:
    """The arguments that rebuild the same configurations in a fresh process."""
    argv = [
        "--batch-size",
        str(args.batch_size),
        "--num-frames",
        str(args.num_frames),
        "--decoder-layers",
        str(args.decoder_layers),
        "--device",
        args.device,
        "--seed",
        str(args.seed),
        "--tasks",
        ",".join(args.tasks),
        "--dtypes",
        ",".join(args.dtypes),
        "--attention",
        ",".join(args.attention),
        "--threads",
        str(args.threads or 0),
    ]
    if args.official_repo:
        argv += ["--official-repo", args.official_repo]
    argv += ["--skip-absent"] if args.skip_absent else ["--no-skip-absent"]
    return argv + (["--compile"] if args.compile else [])


def epoch_minutes(rows: list[dict]) -> dict[str, float]:
    """Minutes per pre-training epoch of NTU-60 X-Sub size (40,091 sequences) at each measured pre-training
    throughput; `rows` as the JSON files store them (`common.result_row`)."""
    return {
        f"{row['implementation']}, {row['variant']}": round(NTU60_XSUB_TRAIN_SAMPLES / row["throughput"] / 60)
        for row in rows
        if row["task"] == PRETRAINING and row["throughput"]
    }


# -------------------------------------------------------------------------------------------------- CLI


def comma_list(choices: tuple[str, ...]) -> Callable[[str], list[str]]:
    def parse(text: str) -> list[str]:
        values = [v.strip() for v in text.split(",") if v.strip()]
        unknown = [v for v in values if v not in choices]
        if unknown or not values:
            raise argparse.ArgumentTypeError(f"pick from {', '.join(choices)} (comma-separated), got {text!r}")
        return values

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model benchmark's own options (next to `common.add_common_arguments`)."""
    parser.add_argument("--decoder-layers", type=int, default=5, help="decoder depth (paper: 5; NTU-60 configs: 3)")
    parser.add_argument("--tasks", type=comma_list(tuple(TASKS)), default=list(TASKS))
    parser.add_argument(
        "--dtypes",
        type=comma_list(("float32", "bfloat16")),
        default=["float32", "bfloat16"],
        help="bfloat16 means torch.autocast(dtype=torch.bfloat16)",
    )
    parser.add_argument("--attention", type=comma_list(("eager", "sdpa")), default=["eager", "sdpa"])
    parser.add_argument(
        "--skip-absent",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also time the opt-in pretraining_skip_absent_persons (changes the objective)",
    )
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (opt-in; compiles first)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per configuration")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per configuration (median reported)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--row-note", default="", help="appended to the variant of every row (how the run was made)")


def normalise(args: argparse.Namespace) -> argparse.Namespace:
    if "bfloat16" in args.dtypes and not bfloat16_runs(args.device):
        print(f"bfloat16 autocast does not run on {args.device}; timing float32 only")
        args.dtypes = [d for d in args.dtypes if d != "bfloat16"]
    return args


def bfloat16_runs(device: str) -> bool:
    if device.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            return (torch.ones(4, 4) @ torch.ones(4, 4)).dtype == torch.bfloat16
    except RuntimeError:
        return False


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    add_arguments(parser)
    parser.add_argument("--json", help="write the results here")
    parser.add_argument("--memory-case", help=argparse.SUPPRESS)  # internal: one configuration's memory
    args = normalise(parser.parse_args(argv))
    if args.memory_case:
        print(json.dumps(measure_one_case_memory(args)))
        return
    machine = machine_info(args.device)
    results = run(args)
    print(format_table(results))
    minutes = epoch_minutes([result_row(r, results) for r in results])
    for name, value in minutes.items():
        print(f"pre-training epoch of NTU-60 X-Sub size ({NTU60_XSUB_TRAIN_SAMPLES} sequences), {name}: {value} min")
    if args.json:
        settings = {k: v for k, v in vars(args).items() if k not in ("json", "memory_case")}
        write_json(args.json, machine, {**settings, "epoch_minutes": minutes}, results)


if __name__ == "__main__":
    main()
