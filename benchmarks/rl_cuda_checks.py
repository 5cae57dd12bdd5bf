"""Checks of the RL path that only a CUDA device can make, written as a results entry.

    python benchmarks/rl_cuda_checks.py --device cuda --tokenizer DIR --out results.json

1. Seeded sampling: a CPU ``torch.Generator`` with CUDA probabilities fails
   (the old ``LocalPolicy`` made one per request); ``LocalPolicy`` with a seed
   now samples on the device, reproducibly.
2. pi_old / mu at step 0: ``LocalPolicy`` samples at T = 0.7 (top-p 0.9) from
   SmolLM2's architecture (random weights) in float32 and in bf16, and the
   trainer (float32 weights; bf16 autocast for the bf16 case) scores the
   tokens: the ratio should be 1 up to the numerics of the two dtypes.
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch
from bench_models import build_model
from transformers import AutoTokenizer

from openale.agent.models.local import LocalPolicy
from openale.agent.models.local_batching import Sampling
from openale.rl.packing import Sample, pack
from openale.rl.trainer import Trainer, TrainerConfig


def old_generator_error(device: str) -> str:
    """What sampling on ``device`` with a CPU generator does (the bug this fixes)."""
    probs = torch.softmax(torch.randn(100, device=device), -1)
    try:
        torch.multinomial(probs, 1, generator=torch.Generator().manual_seed(0))
    except RuntimeError as e:
        return str(e).splitlines()[0]
    return "no error"


def ratio_check(device: str, tokenizer, dtype: str) -> dict:
    model = build_model("arch:smollm2", "cpu")
    with torch.no_grad():
        model.model.norm.weight.mul_(8.0)  # peaked, as a trained LM's next-token distribution
    trainer = Trainer(
        copy.deepcopy(model),
        tokenizer,
        TrainerConfig(lr=1e-6, dtype=dtype),
        out_dir="/tmp/rl-cuda-check",
        device=device,
    )
    policy = LocalPolicy(model.to(device=device, dtype=getattr(torch, dtype)), tokenizer)
    g = torch.Generator().manual_seed(0)
    rows = []
    with policy:
        for i in range(8):
            prompt = torch.randint(100, 49152, (64,), generator=g).tolist()
            gen = policy.generate(prompt, Sampling(0.7, 0.9, 32, seed=i))
            n, m = len(prompt), len(gen.token_ids)
            rows.append(
                Sample(
                    trajectory_id=f"t{i}",
                    task_id="t",
                    group="g",
                    reward=1.0,
                    input_ids=prompt + gen.token_ids,
                    loss_mask=[False] * n + [True] * m,
                    chunk_index=[-1] * n + [0] * m,
                    behaviour_logprobs=[0.0] * n + gen.logprobs,
                    chunk_versions=[0],
                    chunk_failed=[False],
                    num_chunks=1,
                    chunk_temperatures=[gen.logprob_temperature],
                )
            )
    batch = pack(rows, trainer.pad_id).to(device)
    old = trainer.token_logprobs(batch)
    diff = (old - batch.behaviour_logprobs)[batch.loss_mask]
    ratio = diff.exp()
    return {
        "policy_and_compute_dtype": dtype,
        "tokens": int(diff.numel()),
        "ratio_min": round(float(ratio.min()), 5),
        "ratio_max": round(float(ratio.max()), 5),
        "logprob_abs_diff_mean": round(float(diff.abs().mean()), 6),
        "logprob_abs_diff_max": round(float(diff.abs().max()), 6),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--tokenizer", required=True)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    tokenizer = AutoTokenizer.from_pretrained(args.tokenizer)
    result = {"old_cpu_generator_on_device": old_generator_error(args.device)}
    model = build_model("arch:tiny", args.device)
    with LocalPolicy(model, tokenizer) as policy:
        a = policy.generate(list(range(100, 120)), Sampling(1.0, 1.0, 16, seed=7))
        b = policy.generate(list(range(100, 120)), Sampling(1.0, 1.0, 16, seed=7))
    result["seeded_sampling_on_device_reproducible"] = a.token_ids == b.token_ids
    result["pi_old_over_mu"] = [
        ratio_check(args.device, tokenizer, d) for d in ("float32", "bfloat16")
    ]
    print(json.dumps(result, indent=2))
    path = Path(args.out)
    data = json.loads(path.read_text()) if path.exists() else {}
    data["cuda_checks"] = result
    path.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
