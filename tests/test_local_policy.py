"""LocalPolicy on real models: SmolLM2-135M from its PyPI package, and a tiny Llama.

Deterministic stop-string behaviour needs a model that reliably writes a
``<tool_call>``; ``teach`` makes one by overfitting the tiny model on one reply.
"""

from __future__ import annotations

import threading
import time

import pytest
import torch

from openale.agent.models.base import Model
from openale.agent.models.local import LocalPolicy
from openale.agent.models.local_batching import Sampling, _sample
from openale.agent.models.smollm import (
    ModelNotFoundError,
    default_cache_dir,
    load_smollm2,
    resolve_model,
    tiny_random_model,
)

TOOL_REPLY = '<tool_call>{"name": "shell", "arguments": {"command": "ls"}}</tool_call> done'
LIST_FILES = [{"role": "user", "content": "List the files."}]


def teach(model, tokenizer, chats: list[list[dict]], reply: str, steps: int = 80):
    """Overfit ``model`` so greedy decoding answers each chat with ``reply`` (then end of turn)."""
    end = tokenizer.convert_ids_to_tokens(tokenizer.eos_token_id)
    target = tokenizer(reply + end, add_special_tokens=False)["input_ids"]
    rows = []
    for chat in chats:
        text = tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True)
        prompt = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = torch.tensor([prompt + target])
        labels = ids.clone()
        labels[0, : len(prompt)] = -100
        rows.append((ids, labels))
    with torch.random.fork_rng():
        torch.manual_seed(0)
        optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)
        model.train()
        for _ in range(steps):
            optimizer.zero_grad()
            for ids, labels in rows:
                model(input_ids=ids, labels=labels).loss.backward()
            optimizer.step()
    model.eval()
    return model


@pytest.fixture(scope="module")
def smollm():
    started = time.monotonic()
    model, tokenizer = load_smollm2()
    return model, tokenizer, time.monotonic() - started


@pytest.fixture(scope="module")
def greedy(smollm):
    model, tokenizer, _ = smollm
    with LocalPolicy(model, tokenizer, temperature=0, max_new_tokens=24) as policy:
        yield policy


@pytest.fixture(scope="module")
def tool_caller(smollm):
    """A tiny Llama taught to answer ``LIST_FILES`` with ``TOOL_REPLY``."""
    model, _ = tiny_random_model(tokenizer=smollm[1])
    teach(model, smollm[1], [LIST_FILES], TOOL_REPLY, steps=60)
    with LocalPolicy(model, smollm[1], temperature=0, max_new_tokens=40) as policy:
        yield policy


# -- loading --------------------------------------------------------------------------


def test_smollm2_is_converted_once_into_a_trainable_checkpoint(smollm, tmp_path):
    from transformers import Trainer, TrainingArguments

    model, _, _ = smollm
    weights = next(default_cache_dir().glob("*.safetensors"))
    stamp = weights.stat().st_mtime_ns
    assert "quantization_config" not in model.config.to_dict()
    assert getattr(model, "hf_quantizer", None) is None
    assert model.dtype == torch.float32

    again, _ = load_smollm2()  # from the checkpoint: no second conversion
    assert weights.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in default_cache_dir().parent.iterdir()) == [
        default_cache_dir().name
    ]  # no temporary folder left behind
    torch.testing.assert_close(again.lm_head.weight, model.lm_head.weight)

    # The GGUF-loaded model is refused by Trainer; the converted one is not.
    args = TrainingArguments(output_dir=str(tmp_path), report_to=[], use_cpu=True)
    Trainer(model=again, args=args)


def test_resolve_model_names_and_errors(tmp_path):
    with pytest.raises(ModelNotFoundError, match="unknown model"):
        resolve_model("no-such-model")
    with pytest.raises(ModelNotFoundError, match="not a checkpoint"):
        resolve_model(tmp_path)


def test_policy_is_a_model(greedy):
    assert isinstance(greedy, Model)
    assert greedy.native_tools is False


# -- token-in, token-out --------------------------------------------------------------


def test_logprobs_match_a_fresh_forward_pass(smollm):
    model, tokenizer, _ = smollm
    with LocalPolicy(model, tokenizer, temperature=1.0, max_new_tokens=32, seed=0) as policy:
        r = policy.complete([{"role": "user", "content": "Write a short poem about the sea."}])
    assert len(r.logprobs) == len(r.token_ids) > 8
    assert r.usage.completion_tokens == len(r.token_ids)
    assert r.usage.prompt_tokens == len(r.prompt_token_ids)

    ids = torch.tensor([r.prompt_token_ids + r.token_ids])
    with torch.no_grad():
        logp = torch.log_softmax(model(ids).logits[0].float(), -1)  # (seq, vocab)
    n = len(r.prompt_token_ids)
    fresh = logp[n - 1 : -1].gather(-1, torch.tensor(r.token_ids)[:, None])[:, 0]
    diff = (fresh - torch.tensor(r.logprobs)).abs().mean().item()
    print(f"mean |delta logprob| over {len(r.token_ids)} tokens: {diff:.2e}")
    assert diff <= 1e-3


def test_two_turns_extend_one_token_sequence(greedy):
    tokenizer = greedy.tokenizer
    first = [{"role": "user", "content": "What is the capital of France?"}]
    r1 = greedy.complete(first, conversation_id="capitals")
    # The agent may store a different text than was generated (here: stripped
    # and edited); the context keeps the generated ids all the same.
    second = [
        *first,
        {"role": "assistant", "content": "edited: " + r1.text.strip()},
        {"role": "user", "content": "And of Germany?"},
    ]
    r2 = greedy.complete(second, conversation_id="capitals")

    sequence = greedy.context_ids("capitals")
    assert not r1.prompt_continues and r2.prompt_continues
    assert r1.prompt_token_ids + r1.token_ids + r2.prompt_token_ids + r2.token_ids == sequence
    assert sequence[: len(r1.prompt_token_ids) + len(r1.token_ids)] == (
        r1.prompt_token_ids + r1.token_ids
    )
    # Only the new user turn was tokenized, closed off by the template's end of turn.
    end_of_turn = "<|im_end|>\n"
    closing = "\n" if r1.token_ids[-1] == tokenizer.eos_token_id else end_of_turn
    expected = closing + "<|im_start|>user\nAnd of Germany?<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.decode(r2.prompt_token_ids) == expected
    assert "edited" not in tokenizer.decode(sequence)


def test_history_rewritten_starts_over(greedy):
    r1 = greedy.complete([{"role": "user", "content": "Say hi."}], conversation_id="rewrite")
    other = [{"role": "user", "content": "Say bye."}, {"role": "assistant", "content": "x"}]
    r2 = greedy.complete([*other, {"role": "user", "content": "Again."}], conversation_id="rewrite")
    assert r2.prompt_token_ids[: len(r1.prompt_token_ids)] != r1.prompt_token_ids
    assert not r2.prompt_continues
    assert greedy.context_ids("rewrite") == r2.prompt_token_ids + r2.token_ids


def test_count_tokens_is_the_templated_length(greedy):
    messages = [{"role": "system", "content": "Be brief."}, *LIST_FILES]
    encoded = greedy.tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_dict=True
    )
    assert greedy.count_tokens(messages) == len(encoded["input_ids"])


# -- stopping -------------------------------------------------------------------------


def test_stops_at_a_stop_string_and_keeps_it(tool_caller):
    plain = tool_caller.complete(LIST_FILES)
    assert plain.text == TOOL_REPLY  # it goes on past the tag without a stop string
    assert plain.finish_reason == "stop"
    assert plain.token_ids[-1] == tool_caller.tokenizer.eos_token_id

    stopped = tool_caller.complete(LIST_FILES, stop=["</tool_call>"])
    assert stopped.text.endswith("</tool_call>")
    assert stopped.text == TOOL_REPLY.removesuffix(" done")
    assert stopped.finish_reason == "stop"
    assert tool_caller.tokenizer.decode(stopped.token_ids).endswith("</tool_call>")
    assert stopped.token_ids == plain.token_ids[: len(stopped.token_ids)]

    short = tool_caller.complete(LIST_FILES, max_new_tokens=3)
    assert short.finish_reason == "length"
    assert len(short.token_ids) == 3


def test_a_turn_ended_by_a_stop_string_is_closed_with_end_of_turn(tool_caller):
    tokenizer = tool_caller.tokenizer
    r1 = tool_caller.complete(LIST_FILES, stop=["</tool_call>"], conversation_id="tool")
    observation = {"role": "user", "content": "<observation>a.txt</observation>"}
    chat = [*LIST_FILES, {"role": "assistant", "content": r1.text}, observation]
    r2 = tool_caller.complete(chat, stop=["</tool_call>"], conversation_id="tool")
    assert tokenizer.decode(r2.prompt_token_ids).startswith("<|im_end|>\n<|im_start|>user\n")


# -- batching, sampling, versions -----------------------------------------------------


def test_concurrent_callers_are_batched_with_the_same_greedy_ids(smollm):
    model, tokenizer, _ = smollm
    prompts = [
        "What is 2+2?",
        "Name three colours.",
        "Write one sentence about a cat that likes to sleep in the sun all day.",
        "Hi",
    ]
    chats = [[{"role": "user", "content": p}] for p in prompts]
    with LocalPolicy(
        model, tokenizer, temperature=0, max_new_tokens=12, batch_window_s=0.2
    ) as policy:
        alone = [policy.complete(c) for c in chats]
        assert policy.batch_sizes == {1: 4}

        together: list = [None] * len(chats)
        barrier = threading.Barrier(len(chats))

        def call(i: int) -> None:
            barrier.wait()
            together[i] = policy.complete(chats[i])

        threads = [threading.Thread(target=call, args=(i,)) for i in range(len(chats))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert policy.batch_sizes[4] == 1  # one batch of four
    for a, b in zip(alone, together, strict=True):
        assert a.token_ids == b.token_ids
        assert a.finish_reason == b.finish_reason
        torch.testing.assert_close(
            torch.tensor(a.logprobs), torch.tensor(b.logprobs), atol=1e-3, rtol=0
        )


def test_seed_makes_sampling_reproducible(tool_caller):
    chat = [{"role": "user", "content": "Anything"}]
    a = tool_caller.complete(chat, temperature=1.5, seed=7, max_new_tokens=12)
    b = tool_caller.complete(chat, temperature=1.5, seed=7, max_new_tokens=12)
    assert a.token_ids == b.token_ids
    assert a.logprobs == b.logprobs


def test_sampling_records_the_log_prob_it_sampled_from():
    logits = torch.tensor([2.0, 1.0, 0.5, -1.0])
    tok, lp = _sample(logits, Sampling(temperature=0), None)
    assert tok == 0
    assert lp == pytest.approx(float(torch.log_softmax(logits, -1)[0]))
    # top_p so small that one token is left: sampled with certainty, and its log-prob is
    # the tempered distribution's, not renormalised over the nucleus (the trainer's view).
    tok, lp = _sample(logits, Sampling(temperature=1.0, top_p=0.1), torch.Generator())
    assert tok == 0
    assert lp == pytest.approx(float(torch.log_softmax(logits, -1)[0]))
    for seed in range(20):  # never a token outside the nucleus {0, 1}
        gen = torch.Generator().manual_seed(seed)
        tok, lp = _sample(logits, Sampling(temperature=0.5, top_p=0.9), gen)
        assert tok in (0, 1)
        assert lp == pytest.approx(float(torch.log_softmax(logits / 0.5, -1)[tok]))
    tok, lp = _sample(logits, Sampling(temperature=2.0), torch.Generator().manual_seed(1))
    assert lp == pytest.approx(float(torch.log_softmax(logits / 2.0, -1)[tok]))


def test_policy_version_follows_weight_updates(tool_caller):
    version = tool_caller.version
    assert tool_caller.complete(LIST_FILES, max_new_tokens=2).policy_version == version
    state = {k: v.clone() for k, v in tool_caller.model.state_dict().items()}
    assert tool_caller.load_weights(state) == version + 1
    assert tool_caller.bump_version() == version + 2
    with tool_caller.updating_weights():
        pass
    assert tool_caller.version == version + 3
    assert tool_caller.complete(LIST_FILES, max_new_tokens=2).policy_version == version + 3
