"""Models for throughput benchmarks, built from ``transformers`` configs with random weights.

Throughput does not depend on the weights, and a GPU machine may have no
network and no checkpoint, so the architectures are spelled out here:

- ``arch:smollm2``: SmolLM2-135M's Llama (hidden 576, 30 layers, 9 heads, 3 KV
  heads, intermediate 1536, vocab 49152, tied embeddings);
- ``arch:qwen2-1.5b``: a Qwen2-1.5B-like model (hidden 1536, 28 layers, 12
  heads, 2 KV heads, intermediate 8960, vocab 151936, tied embeddings).

Any other name goes to ``resolve_model`` (``smollm2``, ``tiny-random``, a folder).
"""

from __future__ import annotations

from typing import Any

import torch

ARCHS: dict[str, dict[str, Any]] = {
    "arch:smollm2": dict(
        kind="llama",
        hidden_size=576,
        num_hidden_layers=30,
        num_attention_heads=9,
        num_key_value_heads=3,
        intermediate_size=1536,
        vocab_size=49152,
        max_position_embeddings=8192,
        rope_theta=100000.0,
        tie_word_embeddings=True,
    ),
    "arch:qwen2-1.5b": dict(
        kind="qwen2",
        hidden_size=1536,
        num_hidden_layers=28,
        num_attention_heads=12,
        num_key_value_heads=2,
        intermediate_size=8960,
        vocab_size=151936,
        max_position_embeddings=32768,
        rope_theta=1000000.0,
        tie_word_embeddings=True,
    ),
    "arch:tiny": dict(  # for dry runs on a CPU
        kind="llama",
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        intermediate_size=128,
        vocab_size=49152,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
    ),
}


def build_model(name: str, device: str = "cpu", dtype: torch.dtype = torch.float32) -> Any:
    """A randomly initialised causal LM of architecture ``name`` (see ``ARCHS``), in eval mode."""
    from transformers import LlamaConfig, LlamaForCausalLM, Qwen2Config, Qwen2ForCausalLM

    spec = dict(ARCHS[name])
    kind = spec.pop("kind")
    config_cls, model_cls = {
        "llama": (LlamaConfig, LlamaForCausalLM),
        "qwen2": (Qwen2Config, Qwen2ForCausalLM),
    }[kind]
    config = config_cls(**spec, bos_token_id=1, eos_token_id=2, pad_token_id=2)
    config._attn_implementation = "sdpa"
    with torch.device(device):
        torch.manual_seed(0)
        model = model_cls(config).to(dtype)
    model.config._name_or_path = name
    return model.eval()


def load(name: str, device: str = "cpu", dtype: torch.dtype = torch.float32) -> tuple[Any, Any]:
    """``(model, tokenizer or None)``: an ``arch:`` model has no tokenizer."""
    if name in ARCHS:
        return build_model(name, device, dtype), None
    from openale.agent.models.smollm import resolve_model

    model, tokenizer = resolve_model(name)
    return model.to(device=device, dtype=dtype), tokenizer


def matmul_params(model: Any) -> int:
    """Weights a token's forward multiplies by: all but the input embedding (the tied
    output head counts once, as the LM head)."""
    total = sum(p.numel() for p in model.parameters())
    embed = model.get_input_embeddings().weight
    head = model.get_output_embeddings().weight
    return total if head is embed else total - embed.numel()


def train_flops(model: Any, rows: int, length: int) -> float:
    """FLOPs of one forward + backward over ``rows`` sequences of ``length`` tokens:
    6 N per token, plus causal attention (QK^T and AV: 6 * 2 * L * d * T / 2 per token)."""
    cfg = model.config
    tokens = rows * length
    attention = 6 * cfg.num_hidden_layers * cfg.hidden_size * length  # per token, causal
    return tokens * (6 * matmul_params(model) + attention)


def synchronize(device: str | torch.device) -> None:
    """Wait for queued kernels, so a wall-clock interval covers the work it timed."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


# Dense bf16 peak of an H100/H200 SXM (datasheet); MFU is against it.
PEAK_FLOPS = {"cuda": 989e12}
