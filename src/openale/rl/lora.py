"""LoRA for the trainer: wrap a model with ``peft`` adapters, merge them back for generators.

Only adapter weights train; generators (``LocalPolicy``) still get full
weights, keyed as the plain model's ``state_dict``, with the adapter merged in.
"""

from __future__ import annotations

from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field


class LoraSettings(BaseModel):
    """LoRA adapter settings (``peft.LoraConfig``)."""

    model_config = ConfigDict(extra="forbid")

    r: int = Field(8, gt=0)
    alpha: float = 16.0
    dropout: float = Field(0.0, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj"]
    )


def wrap_lora(model: Any, lora: LoraSettings) -> Any:
    """``model`` as a ``peft`` model whose only trainable weights are the adapters."""
    from peft import LoraConfig, get_peft_model

    return get_peft_model(
        model,
        LoraConfig(
            r=lora.r,
            lora_alpha=lora.alpha,
            lora_dropout=lora.dropout,
            target_modules=list(lora.target_modules),
            bias="none",
            task_type="CAUSAL_LM",
        ),
    )


@torch.no_grad()
def merged_state_dict(model: Any) -> dict[str, torch.Tensor]:
    """Full weights of a ``wrap_lora`` model, keyed as the plain model's, adapters merged in."""
    from peft.tuners.lora import LoraLayer

    base = model.get_base_model()
    out = {
        k.replace(".base_layer.", "."): v.detach()
        for k, v in base.state_dict().items()
        if ".lora_" not in k
    }
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer) and module.active_adapters:
            weight = module.get_base_layer().weight
            delta = sum(module.get_delta_weight(a) for a in module.active_adapters)
            out[f"{name}.weight"] = (weight + delta).to(weight.dtype)
    return out
