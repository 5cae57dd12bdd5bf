"""The policy trainer: a ``transformers`` causal LM, AdamW, and the losses of ``openale.rl.losses``.

One ``train_step`` is one optimizer step over a batch of ``Sample`` rows:

1. split the batch into micro-batches of at most ``micro_batch_tokens`` padded
   tokens, and compute per-batch quantities (group advantages) over all of it;
2. compute pi_old for every micro-batch and log how far it is from the
   behaviour log-probs mu the generator recorded. One step per batch means
   pi_old is the weights before this step, so by default it is the gradient
   pass's own log-probs, detached -- the same numbers as a separate no-grad
   pass when no dropout is active, one forward fewer;
   ``recompute_old_logprobs=True`` runs that separate pass (for dropout);
3. for each micro-batch, the loss of the configured algorithm (plus the
   optional KL to a frozen reference and the imitation term), scaled by the
   micro-batch's share of the loss tokens, backward -- so the accumulated
   gradient equals the gradient of the whole batch's loss;
4. clip the gradient norm, step AdamW, ``version += 1``.

Log-probs (``openale.rl.logprobs``) are taken at the temperature each token's
behaviour log-prob was recorded at (no top-p renormalisation, as in verl and
OpenRLHF), so pi_old / mu measures staleness, not the sampling temperature.
Weights and optimizer state are float32 on ``device``; ``dtype = "bfloat16"``
runs forward and backward under bf16 autocast (float32 master weights: an
update smaller than bf16's resolution still lands).

LoRA (``peft``, ``openale.rl.lora``) trains only adapter weights;
``policy_state_dict`` still hands generators full weights, with the adapter
merged in. Micro-batching is ``packing.prepare_batch``; what a step reports,
``step_stats.StepStats``.

A step waits for the accelerator once, at its end: the figures it reports stay
device tensors until then (``step_stats.PendingStats``), and the host-side
sizes the losses need (chunk counts, loss weights) are counted while packing.
On CUDA, AdamW is PyTorch's fused kernel (one pass over the weights and
optimizer state instead of one per elementwise operation).
"""

from __future__ import annotations

import copy
import random
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field

from openale.rl import checkpoint as ckpt
from openale.rl import logprobs, losses
from openale.rl.lora import LoraSettings, merged_state_dict, wrap_lora
from openale.rl.packing import PackedBatch, PreparedBatch, Sample, prepare_batch
from openale.rl.step_stats import PendingStats, StepStats


class UntrainableModelError(TypeError):
    """The model still carries a quantizer; the trainer needs plain float weights."""


class TrainerConfig(BaseModel):
    """How the trainer updates the policy. Defaults suit a small model on a laptop."""

    model_config = ConfigDict(extra="forbid")

    algorithm: losses.Algorithm = "ipa"
    lr: float = Field(1e-5, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)
    adam_eps: float = Field(1e-8, gt=0)
    max_grad_norm: float = 1.0  # <= 0: no clipping (the norm is still measured)
    micro_batch_tokens: int = Field(4096, gt=0)  # padded B*T per forward/backward
    gamma: float = Field(0.95, gt=0, le=1)  # IPA chunk discount
    mismatch_threshold: float = Field(5.0, gt=0)  # IPA H: drop chunks with pi_old/mu > H
    clip_eps: float = Field(0.2, gt=0)  # GRPO / PPO
    agg: losses.Agg = "token-mean"
    kl_coef: float = Field(0.0, ge=0)  # > 0 keeps a frozen reference policy
    kl_kind: losses.KLKind = "k3"
    imitation_coef: float = Field(0.0, ge=0)  # SFT on expert-prefix samples
    lora: LoraSettings | None = None
    seed: int = 0
    # Compute dtype of forward/backward (autocast); the weights stay float32 either way.
    dtype: Literal["float32", "bfloat16"] = "float32"
    # True: pi_old comes from its own no-grad forward pass before the update. False:
    # from the gradient pass itself, detached -- the same values when no dropout is
    # active, since the weights do not change within a step; saves one forward
    # (tested equal in tests/test_rl_trainer.py).
    recompute_old_logprobs: bool = False
    # Compile the model's forward with torch.compile: False, True (inductor) or a backend
    # name. Worth it on CUDA for small, launch-bound models (benchmarks/rl_trainer_bench.py
    # --compile); packed micro-batches have few distinct shapes, so it compiles a few times.
    compile: bool | str = False
    # torch's intra-op host threads. None: 1 when training on CUDA (the host only packs
    # and launches; more threads spin against the launch thread and slowed a launch-bound
    # step by up to a fifth on an H200), torch's default otherwise.
    host_threads: int | None = Field(None, gt=0)


class Trainer:
    """Trains a causal LM on packed samples with IPA, GRPO, PPO or TOPR (see module docstring)."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        config: TrainerConfig | None = None,
        *,
        out_dir: str | Path,
        device: str | torch.device = "cpu",
    ):
        self.config = config = config or TrainerConfig()
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.version = 0
        _refuse_quantized(model)
        _seed_everything(config.seed)

        self.compute_dtype = getattr(torch, config.dtype)
        threads = config.host_threads or (1 if self.device.type == "cuda" else None)
        if threads:
            torch.set_num_threads(threads)
        # float32 master weights: bf16 weights would round most small updates away.
        model = model.to(device=self.device, dtype=torch.float32)
        pad = (
            tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        )
        self.pad_id = int(pad if pad is not None else 0)
        self.reference: Any = None
        if config.lora is not None:
            model = wrap_lora(model, config.lora)
        elif config.kl_coef > 0:
            # With LoRA the reference is the base model with the adapter switched off.
            self.reference = copy.deepcopy(model).eval().requires_grad_(False)
        self.model = model
        # The compiled module shares the parameters; checkpoints keep using self.model.
        self._forward = _compiled(model, config.compile)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ValueError("the model has no trainable parameters")
        self.optimizer = torch.optim.AdamW(
            self.params,
            lr=config.lr,
            betas=config.betas,
            eps=config.adam_eps,
            weight_decay=config.weight_decay,
            fused=self.device.type == "cuda" or None,
        )

    # -- log-probs -----------------------------------------------------------------------

    def token_logprobs(
        self, batch: PackedBatch, *, grad: bool = False, model: Any = None
    ) -> torch.Tensor:
        """[B, T]: log-prob of ``input_ids[:, t]`` given the tokens before it, at the
        temperature its behaviour log-prob was taken at (0 at t=0 and on padding)."""
        model = model if model is not None else self._forward
        with torch.set_grad_enabled(grad):
            return logprobs.token_logprobs(model, batch, compute_dtype=self.compute_dtype)

    def logprobs_of(self, samples: Sequence[Sample]) -> list[torch.Tensor]:
        """pi_theta (no grad) of ``samples``, one [B, T] tensor per micro-batch (as split here)."""
        prepared = self._prepare(samples)
        return self._old_logprobs(prepared.packs)

    def _old_logprobs(self, packs: list[PackedBatch]) -> list[torch.Tensor]:
        self.model.eval()
        return [self.token_logprobs(p) for p in packs]

    def _reference_logprobs(self, packs: list[PackedBatch]) -> list[torch.Tensor | None]:
        if self.config.kl_coef <= 0:
            return [None] * len(packs)
        if self.reference is not None:
            return [self.token_logprobs(p, model=self.reference) for p in packs]
        with self.model.disable_adapter():  # LoRA: the base model is the reference
            return [self.token_logprobs(p) for p in packs]

    # -- steps ---------------------------------------------------------------------------

    def train_step(self, samples: Sequence[Sample], imitation: Sequence[Sample] = ()) -> StepStats:
        """One optimizer step of the configured algorithm over ``samples``.

        Samples flagged ``imitation`` (expert prefixes of initialized resampling)
        join ``imitation`` and are trained with ``imitation_coef * sft_loss``;
        they never enter the RL loss, and with ``imitation_coef == 0`` not at all.
        """
        started = time.perf_counter()
        stats, pending = self._accumulate(samples, imitation)
        return self._optimizer_step(stats, pending, started)

    def sft_step(self, samples: Sequence[Sample]) -> StepStats:
        """One optimizer step of error-masked SFT: NLL of generated tokens of chunks that worked."""
        started = time.perf_counter()
        if not samples:
            raise ValueError("sft_step needs at least one sample")
        self.optimizer.zero_grad(set_to_none=True)
        prepared = self._prepare(samples, sft=True)
        self.model.train()
        pending = PendingStats()
        for p, weight in zip(prepared.packs, prepared.weights, strict=True):
            if weight == 0:
                continue
            logp = self.token_logprobs(p, grad=True)
            loss, _ = losses.sft_loss(logp, p.loss_mask, p.token_failed, agg=self.config.agg)
            (loss * weight).backward()
            pending.add("loss", loss, weight)
        return self._optimizer_step(self._base_stats(prepared, samples), pending, started)

    def accumulate_gradients(
        self, samples: Sequence[Sample], imitation: Sequence[Sample] = ()
    ) -> StepStats:
        """Zero the gradients and accumulate the whole batch's loss gradient (no optimizer step)."""
        stats, pending = self._accumulate(samples, imitation)
        return pending.resolve(stats)

    def _accumulate(
        self, samples: Sequence[Sample], imitation: Sequence[Sample]
    ) -> tuple[StepStats, PendingStats]:
        cfg = self.config
        imitation = [*imitation, *(s for s in samples if s.imitation)]
        samples = [s for s in samples if not s.imitation]
        if not samples:
            raise ValueError("train_step needs at least one (non-imitation) sample")
        self.optimizer.zero_grad(set_to_none=True)
        prepared = self._prepare(samples)
        n = len(prepared.packs)
        old: list[torch.Tensor | None] = (
            list(self._old_logprobs(prepared.packs)) if cfg.recompute_old_logprobs else [None] * n
        )
        refs = self._reference_logprobs(prepared.packs)
        stats = self._base_stats(prepared, samples)
        pending = PendingStats()

        self.model.train()
        for i, p in enumerate(prepared.packs):
            weight = prepared.weights[i]
            if weight == 0:  # no loss tokens: nothing to learn, no mismatch to measure
                continue
            logp = self.token_logprobs(p, grad=True)
            old_i = old[i] if old[i] is not None else logp.detach()  # same weights: pi_old
            loss, parts = self._loss(p, logp, old_i, prepared.advantages[i], prepared.max_chunks[i])
            if refs[i] is not None:
                kl = losses.aggregate(
                    losses.kl_penalty(logp, refs[i], p.loss_mask, kind=cfg.kl_kind),
                    p.loss_mask,
                    cfg.agg,
                )
                loss = loss + cfg.kl_coef * kl
                pending.add("kl", kl, weight)
            (loss * weight).backward()
            pending.add("loss", loss, weight)
            pending.add_algo(parts, weight)
            pending.add_mismatch(old_i, p.behaviour_logprobs, p.loss_mask)

        if imitation and cfg.imitation_coef > 0:
            im = self._prepare(imitation, sft=True)
            for p, weight in zip(im.packs, im.weights, strict=True):
                if weight == 0:
                    continue
                logp = self.token_logprobs(p, grad=True)
                loss, _ = losses.sft_loss(logp, p.loss_mask, p.token_failed, agg=cfg.agg)
                (cfg.imitation_coef * weight * loss).backward()
                pending.add("imitation_loss", loss, weight)
                pending.add("loss", loss, cfg.imitation_coef * weight)
            stats.padded_tokens += im.padded_tokens
        return stats, pending

    @torch.no_grad()
    def objective(self, samples: Sequence[Sample], old: list[torch.Tensor] | None = None) -> float:
        """The algorithm's loss over ``samples`` at the current weights, without a step.

        ``old`` (from ``logprobs_of``) pins pi_old, e.g. to the weights before a
        step, so the surrogate before and after an update can be compared.
        """
        prepared = self._prepare(samples)
        old = old if old is not None else self._old_logprobs(prepared.packs)
        self.model.eval()
        total = torch.zeros((), device=self.device)
        for i, p in enumerate(prepared.packs):
            logp = self.token_logprobs(p)
            loss, _ = self._loss(p, logp, old[i], prepared.advantages[i], prepared.max_chunks[i])
            total += loss * prepared.weights[i]
        return float(total)

    def _loss(
        self,
        p: PackedBatch,
        logp: torch.Tensor,
        old: torch.Tensor,
        adv: torch.Tensor,
        max_chunks: int,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        cfg = self.config
        mask = p.loss_mask
        if cfg.algorithm == "ipa":
            return losses.ipa_loss(
                logp, old, p.behaviour_logprobs, p.rewards, p.chunk_index, p.num_chunks, mask,
                gamma=cfg.gamma, H=cfg.mismatch_threshold, agg=cfg.agg, max_chunks=max_chunks,
            )  # fmt: skip
        if cfg.algorithm == "grpo":
            return losses.grpo_loss(logp, old, adv, mask, clip_eps=cfg.clip_eps, agg=cfg.agg)
        if cfg.algorithm == "ppo":
            return losses.ppo_clip_loss(logp, old, adv, mask, clip_eps=cfg.clip_eps, agg=cfg.agg)
        return losses.topr_loss(logp, p.behaviour_logprobs, p.rewards, mask, agg=cfg.agg)

    def _prepare(self, samples: Sequence[Sample], *, sft: bool = False) -> PreparedBatch:
        """Micro-batches, per-row advantages (over the whole batch) and loss weights."""
        # GRPO normalises by the group's std; PPO (no critic here) uses the group mean
        # as its baseline.
        return prepare_batch(
            samples,
            max_tokens=self.config.micro_batch_tokens,
            pad_id=self.pad_id,
            device=self.device,
            normalize_std=self.config.algorithm == "grpo",
            agg=self.config.agg,
            sft=sft,
        )

    def _base_stats(self, prepared: PreparedBatch, samples: Sequence[Sample]) -> StepStats:
        rewards = [float(s.reward) for s in samples]
        stale = [self.version - s.oldest_version for s in samples if s.oldest_version >= 0]
        return StepStats(
            version=self.version,
            loss=0.0,
            grad_norm=0.0,
            samples=prepared.samples,
            tokens=prepared.tokens,
            padded_tokens=prepared.padded_tokens,
            micro_batches=len(prepared.packs),
            seconds=0.0,
            tokens_per_s=0.0,
            reward_mean=sum(rewards) / len(rewards),
            success=sum(r > 0 for r in rewards) / len(rewards),
            staleness_mean=sum(stale) / len(stale) if stale else 0.0,
            staleness_max=float(max(stale)) if stale else 0.0,
        )

    def _optimizer_step(self, stats: StepStats, pending: PendingStats, started: float) -> StepStats:
        max_norm = self.config.max_grad_norm if self.config.max_grad_norm > 0 else float("inf")
        pending.grad_norm = torch.nn.utils.clip_grad_norm_(self.params, max_norm)
        self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.version += 1
        pending.resolve(stats)  # the step's one wait for the device
        stats.version = self.version
        stats.seconds = time.perf_counter() - started
        stats.tokens_per_s = stats.padded_tokens / stats.seconds if stats.seconds > 0 else 0.0
        return stats

    # -- weights and checkpoints ---------------------------------------------------------

    @torch.no_grad()
    def policy_state_dict(self) -> dict[str, torch.Tensor]:
        """Full weights of the policy, keyed as the plain model's ``state_dict``, LoRA merged in.

        Without LoRA the tensors share storage with the trained model (no
        copy): load them (``LocalPolicy.load_weights``) before the next step.
        """
        if self.config.lora is None:
            return {k: v.detach() for k, v in self.model.state_dict().items()}
        return merged_state_dict(self.model)

    def save_checkpoint(self, directory: str | Path, extra: dict[str, Any] | None = None) -> Path:
        """Weights (or the LoRA adapter), optimizer, RNG states, version and ``extra``."""
        meta = {"config": self.config.model_dump(mode="json")}
        return ckpt.save_checkpoint(
            directory, self.model, self.optimizer, version=self.version, extra=extra, meta=meta
        )

    def load_checkpoint(self, directory: str | Path) -> dict[str, Any]:
        """Resume from ``save_checkpoint``'s folder; returns the ``extra`` saved with it."""
        state = ckpt.load_checkpoint(directory, self.model, self.optimizer)
        self.version = int(state["version"])
        return state["extra"]


def _refuse_quantized(model: Any) -> None:
    if getattr(model, "hf_quantizer", None) is not None or getattr(model, "is_quantized", False):
        raise UntrainableModelError(
            "the model carries a quantizer (e.g. it was loaded from a GGUF file): load it with "
            "openale.agent.models.smollm.resolve_model / load_pretrained, which give plain weights"
        )


def _compiled(model: Any, how: bool | str) -> Any:
    if how is False:
        return model
    return torch.compile(model) if how is True else torch.compile(model, backend=how)


def _seed_everything(seed: int) -> None:
    # The trainer owns the process's RNGs (LoRA init, dropout), so runs repeat exactly.
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
