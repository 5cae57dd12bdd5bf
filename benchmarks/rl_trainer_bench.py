"""Training throughput of ``Trainer.train_step`` against a bare PyTorch step, side by side.

    python benchmarks/rl_trainer_bench.py [--model smollm2] [--samples 4] [--length 96]
        [--micro-batch-tokens 192] [--repeats 3] [--device cpu] [--dtype float32]

    # on a GPU, random weights from a config (see bench_models.py):
    python benchmarks/rl_trainer_bench.py --device cuda --dtype bfloat16 \
        --model arch:qwen2-1.5b --samples 16 --length 2048 --micro-batch-tokens 16384

Both sides train the same model (SmolLM2-135M by default) on the same batch,
split into the same micro-batches:

- ``trainer``: ``Trainer.train_step`` with IPA and the default config --
  packing, pi_old from the gradient pass, mismatch stats, the loss per
  micro-batch, backward, clipping, AdamW;
- ``bare``: the already-packed micro-batches, forward, log-softmax gather, a
  reward-weighted log-likelihood loss, backward, clipping, AdamW -- with the
  same float32 weights and, for ``--dtype bfloat16``, the same bf16 autocast.
  PyTorch's default AdamW (the multi-tensor "foreach" one);
- on CUDA also ``bare_fused_adamw``: the bare step with AdamW(fused=True), the
  optimizer the trainer uses there, so the share of the optimizer in the
  trainer's lead over ``bare`` is visible.

``trainer_vs_bare_torch`` = trainer tokens/s ÷ bare tokens/s (medians; goal
>= 0.8), counted per second of process CPU time: on a shared machine other
jobs stretch wall-clock seconds at random, not the work a step does (wall-clock
ratios are recorded too). A third side, ``trainer_separate_old``, runs
``train_step`` with ``recompute_old_logprobs=True`` (a separate no-grad pi_old
forward, for models with dropout): work the bare step does not do, so its ratio
is bounded by about (fwd + bwd) / (2 fwd + bwd).
Runs rotate their order so drift on a shared machine falls on every side. The
figure is read-modify-written under the key ``trainer_vs_bare_torch`` of
``benchmarks/results/rl.json``.

On CUDA (``--device cuda``) every timed step ends with a synchronize, ratios are
of wall-clock medians (the GPU does the work, not the process's CPU time), and
the result also holds each side's peak GPU memory and MFU (model FLOPs of
forward + backward per second over the dense bf16 peak); it goes under
``trainer_vs_bare_torch_gpu`` / the model's name, or into ``--out``.
``--profile FILE`` then profiles one trainer and one bare step (torch.profiler)
and writes the kernels' time table to FILE.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
from bench_models import PEAK_FLOPS, load, synchronize, train_flops

from openale.rl.logprobs import autocast
from openale.rl.packing import Sample, micro_batches, pack
from openale.rl.trainer import Trainer, TrainerConfig

RESULTS = Path(__file__).parent / "results" / "rl.json"
KEY = "trainer_vs_bare_torch"


def make_samples(n: int, length: int, vocab: int, seed: int = 0) -> list[Sample]:
    """``n`` rows of ``length`` tokens: a 32-token prompt, then two generated chunks."""
    rng = random.Random(seed)
    prompt, obs = 32, 16
    gen = (length - prompt - obs) // 2
    rows = []
    for i in range(n):
        ids = [rng.randrange(100, vocab) for _ in range(length)]
        mask = (
            [False] * prompt + [True] * gen + [False] * obs + [True] * (length - prompt - gen - obs)
        )
        index = [-1] * prompt + [0] * gen + [-1] * obs + [1] * (length - prompt - gen - obs)
        rows.append(
            Sample(
                trajectory_id=f"t{i}",
                task_id="bench",
                group=f"g{i // 2}",
                reward=1.0 if i % 2 == 0 else -1.0,
                input_ids=ids,
                loss_mask=mask,
                chunk_index=index,
                behaviour_logprobs=[-10.0 if m else 0.0 for m in mask],
                chunk_versions=[0, 0],
                chunk_failed=[False, False],
                num_chunks=2,
            )
        )
    return rows


def bare_step(model, optimizer, packs, max_grad_norm: float, dtype=torch.float32) -> None:
    """Forward, log-prob gather, reward-weighted NLL, backward, clip, AdamW: nothing else."""
    optimizer.zero_grad(set_to_none=True)
    total = sum(int(p.loss_mask.sum()) for p in packs)
    for p in packs:
        with autocast(p.input_ids.device, dtype):
            logits = model(input_ids=p.input_ids, attention_mask=p.attention_mask).logits
        logp = torch.log_softmax(logits[:, :-1].float(), -1)  # [B, T-1, V]
        logp = logp.gather(-1, p.input_ids[:, 1:, None]).squeeze(-1)  # [B, T-1]
        weight = p.rewards[:, None] * p.loss_mask[:, 1:]  # [B, T-1]
        loss = -(weight * logp).sum() / total
        loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()


class _NoTokenizer:
    """What the trainer asks of a tokenizer (the pad id) for a model built from a config."""

    pad_token_id = 2
    eos_token_id = 2


def run(args: argparse.Namespace) -> dict:
    load_avg = os.getloadavg()[0]
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    model, tokenizer = load(args.model, args.device)
    tokenizer = tokenizer or _NoTokenizer()
    vocab = model.config.vocab_size
    config = TrainerConfig(
        algorithm="ipa", lr=1e-6, micro_batch_tokens=args.micro_batch_tokens, dtype=args.dtype
    )
    trainer = Trainer(
        model, tokenizer, config, out_dir=tempfile.mkdtemp(prefix="rl-bench-"), device=device
    )
    compute = trainer.compute_dtype
    samples = make_samples(args.samples, args.length, vocab)
    split = micro_batches(samples, args.micro_batch_tokens)
    packs = [pack(mb, trainer.pad_id).to(device) for mb in split]
    padded = sum(p.input_ids.numel() for p in packs)
    bare_opt = torch.optim.AdamW(trainer.params, lr=1e-6)
    fused_opt = torch.optim.AdamW(trainer.params, lr=1e-6, fused=True) if cuda else None
    model = trainer.model
    flops = train_flops(model, args.samples, args.length)
    peak_mem: dict[str, float] = {}

    def timed(name: str, fn) -> tuple[float, float]:
        if cuda:
            torch.cuda.reset_peak_memory_stats(device)
        synchronize(device)
        started, cpu = time.perf_counter(), time.process_time()
        fn()
        synchronize(device)
        wall, used = time.perf_counter() - started, time.process_time() - cpu
        if cuda:
            peak_mem[name] = max(peak_mem.get(name, 0.0), torch.cuda.max_memory_allocated(device))
        return wall, used

    def trainer_step(recompute: bool) -> None:
        trainer.config.recompute_old_logprobs = recompute
        stats = trainer.train_step(samples)
        assert stats.padded_tokens == padded

    def bare(optimizer=bare_opt) -> None:
        model.train()
        bare_step(model, optimizer, packs, config.max_grad_norm, compute)

    sides = {
        "trainer": lambda: timed("trainer", lambda: trainer_step(False)),
        "trainer_separate_old": lambda: timed("trainer_separate_old", lambda: trainer_step(True)),
        "bare": lambda: timed("bare", bare),
    }
    if args.compile:
        # A second trainer on a copy of the weights, its forward through torch.compile.
        compiled = Trainer(
            copy.deepcopy(model),
            tokenizer,
            config.model_copy(
                update={"compile": True if args.compile == "inductor" else args.compile}
            ),
            out_dir=tempfile.mkdtemp(prefix="rl-bench-"),
            device=device,
        )

        def compiled_step() -> None:
            assert compiled.train_step(samples).padded_tokens == padded

        sides["trainer_compiled"] = lambda: timed("trainer_compiled", compiled_step)
    if fused_opt is not None:
        sides["bare_fused_adamw"] = lambda: timed("bare_fused_adamw", lambda: bare(fused_opt))

    def summary(times: dict[str, list[float]], cpu: dict[str, list[float]]) -> dict:
        med = {name: statistics.median(t) for name, t in times.items()}
        med_cpu = {name: statistics.median(t) for name, t in cpu.items()}
        # On a GPU the work is the device's: wall clock. On a CPU, process CPU time.
        basis = med if cuda else med_cpu
        out = {
            "value": round(basis["bare"] / basis["trainer"], 3),
            "value_separate_old_pass": round(basis["bare"] / basis["trainer_separate_old"], 3),
            **{
                f"value_vs_{name}": round(basis[name] / basis["trainer"], 3)
                for name in ("bare_fused_adamw",)
                if name in basis
            },
            **(
                {"value_compiled": round(basis["bare"] / basis["trainer_compiled"], 3)}
                if "trainer_compiled" in basis
                else {}
            ),
            "wall_ratio": round(med["bare"] / med["trainer"], 3),
            "wall_ratio_separate_old_pass": round(med["bare"] / med["trainer_separate_old"], 3),
            "goal": 0.95 if cuda else 0.8,
            "note": "value: default TrainerConfig (pi_old from the gradient pass, detached); "
            "value_separate_old_pass: recompute_old_logprobs=True (an extra no-grad pi_old "
            "forward). "
            + (
                "Ratios of median wall-clock seconds per step, each step synchronised. "
                if cuda
                else "Ratios of median process CPU seconds per step (the work done; other jobs "
                "on a shared machine inflate it less than wall-clock); wall_ratio*: from "
                f"wall-clock medians. Load average at the start: {load_avg:.1f} on "
                f"{os.cpu_count()} cores. "
            ),
            "model": args.model,
            "device": _device_name(device),
            "dtype": args.dtype,
            "weights": "float32 (master), autocast to dtype"
            if args.dtype != "float32"
            else "float32",
            "algorithm": "ipa",
            "samples": args.samples,
            "length": args.length,
            "micro_batch_tokens": args.micro_batch_tokens,
            "micro_batches": len(packs),
            "padded_tokens_per_step": padded,
            "repeats": len(times["trainer"]),
            **{f"{name}_s": [round(x, 4) for x in t] for name, t in times.items()},
            **{f"{name}_cpu_s": [round(x, 3) for x in t] for name, t in cpu.items()},
            **{f"{name}_tokens_per_s": round(padded / m, 1) for name, m in med.items()},
            "timestamp": datetime.now(UTC).isoformat(),
            "torch": torch.__version__,
            "host_threads": torch.get_num_threads(),
        }
        if not cuda:
            out.update({f"{n}_tokens_per_cpu_s": round(padded / m, 1) for n, m in med_cpu.items()})
        if device.type in PEAK_FLOPS:
            out["model_flops_per_step"] = flops
            out["peak_flops"] = PEAK_FLOPS[device.type]
            out.update(
                {f"{n}_mfu": round(flops / m / PEAK_FLOPS[device.type], 3) for n, m in med.items()}
            )
        if peak_mem:
            out.update({f"{n}_peak_memory_gib": round(b / 2**30, 2) for n, b in peak_mem.items()})
        return out

    for fn in sides.values():  # warm-up: allocator, optimizer state, kernels
        fn()
    times: dict[str, list[float]] = {name: [] for name in sides}
    cpu: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for i in range(args.repeats):
        k = i % len(names)
        for name in names[k:] + names[:k]:  # rotate the order each repeat
            wall, used = sides[name]()
            times[name].append(wall)
            cpu[name].append(used)
        print(
            f"repeat {i + 1}/{args.repeats}: "
            + ", ".join(f"{n} {times[n][-1]:.3f} s ({cpu[n][-1]:.2f} cpu-s)" for n in names),
            flush=True,
        )
        if not args.no_save:  # after every repeat: a run cut short still leaves its figures
            save(summary(times, cpu), args)
    if args.profile:
        profile(args.profile, device, {"trainer": lambda: trainer_step(False), "bare": bare})
    return summary(times, cpu)


def profile(path: str, device: torch.device, steps: dict) -> None:
    """One step of each side under torch.profiler; the kernels' time table goes to ``path``."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as torch_profile

    activities = [ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(ProfilerActivity.CUDA)
    sort = "cuda_time_total" if device.type == "cuda" else "cpu_time_total"
    with open(path, "a") as out:
        for name, step in steps.items():
            synchronize(device)
            with torch_profile(activities=activities) as prof:
                step()
                synchronize(device)
            table = prof.key_averages().table(sort_by=sort, row_limit=30, max_name_column_width=60)
            out.write(f"== {name} ==\n{table}\n")


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return (
        f"cpu ({platform.processor() or platform.machine()}), "
        f"{torch.get_num_threads()} torch threads, {os.cpu_count()} cores (shared)"
    )


def save(result: dict, args: argparse.Namespace) -> None:
    """Read-modify-write only our key: other benchmarks own the rest of the results file.

    On a CPU: ``trainer_vs_bare_torch``; on a GPU: ``trainer_vs_bare_torch_gpu``,
    one entry per model.
    """
    path = Path(args.out) if args.out else RESULTS
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(path.read_text()) if path.exists() else {"benchmark": "rl"}
    if args.device.startswith("cuda"):
        data.setdefault(f"{KEY}_gpu", {})[args.model] = result
    else:
        data[KEY] = result
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2")
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--length", type=int, default=96)
    parser.add_argument("--micro-batch-tokens", type=int, default=192)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--out", default=None, help="results file (default: results/rl.json)")
    parser.add_argument("--no-save", action="store_true")
    parser.add_argument(
        "--compile",
        default=None,
        help="also time a trainer with TrainerConfig.compile (inductor, or a backend name)",
    )
    parser.add_argument("--profile", default=None, help="write a profile of one step per side")
    args = parser.parse_args()
    print(json.dumps(run(args), indent=2))  # run() saved it after every repeat


if __name__ == "__main__":
    main()
