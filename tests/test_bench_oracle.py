"""Oracle trajectories: reference solutions acted out by the real agent, teacher-forced.

Real Docker sandboxes, the real agent loop, the real verifier; the policy is a
tiny random Llama with SmolLM2's tokenizer and chat template, so the token
bookkeeping is the real one and the forward passes are fast.
"""

import shutil

import pytest
import torch

from openale.agent.models.local import LocalPolicy
from openale.agent.models.smollm import tiny_random_model
from openale.bench.oracle import (
    OracleError,
    oracle_agent_config,
    oracle_replies,
    oracle_trajectories,
    run_scripted,
    solution_commands,
)
from openale.rl.packing import pack, samples_from_trajectory
from openale.tasks import load_task, load_tasks


@pytest.fixture(scope="module")
def policy():
    model, tokenizer = tiny_random_model(seed=1)
    with LocalPolicy(model, tokenizer, name="tiny") as p:
        yield p


def _sequence(traj) -> list[int]:
    ids: list[int] = []
    for chunk in traj.chunks:
        ids += chunk.prompt_token_ids + chunk.token_ids
    return ids


def test_solution_commands_are_one_turn_per_line_unless_a_line_cannot_stand_alone():
    script = (
        "#!/bin/bash\nset -euo pipefail\n# make it\nprintf 'a\\n' > /app/x\n\nchmod +x /app/x\n"
    )
    assert solution_commands(script) == ["printf 'a\\n' > /app/x", "chmod +x /app/x"]
    loop = "#!/bin/bash\nfor f in *.txt; do\n  mv $f $f.bak\ndone\n"
    assert solution_commands(loop) == ["for f in *.txt; do\n  mv $f $f.bak\ndone"]
    heredoc = "cat > /app/a <<EOF\nhi\nEOF\n"
    assert solution_commands(heredoc) == ["cat > /app/a <<EOF\nhi\nEOF"]


def test_option_lines_are_dropped_and_heredoc_bodies_are_kept_verbatim():
    # The two former copies disagreed on ``set +x`` (one made it an agent turn),
    # and both dropped a heredoc body's shebang, comments and ``set -e``.
    traced = "#!/bin/bash\nset -x\nmkdir /app/a\nset +x\nset +o errexit\necho done\n"
    assert solution_commands(traced) == ["mkdir /app/a", "echo done"]
    assert solution_commands("set -- a b\necho $1\n") == ["set -- a b", "echo $1"]
    script = (
        "#!/bin/bash\nset -euo pipefail\n# write it\ncat > /app/run.sh <<'EOF'\n"
        "#!/bin/bash\nset -e\n# greet\n\necho hi\nEOF\nset +x\nchmod +x /app/run.sh\n"
    )
    assert solution_commands(script) == [
        "cat > /app/run.sh <<'EOF'\n#!/bin/bash\nset -e\n# greet\n\necho hi\nEOF\n"
        "chmod +x /app/run.sh"
    ]
    with pytest.raises(OracleError, match="no commands"):
        solution_commands("#!/bin/bash\nset -e\n# nothing\n")


@pytest.mark.slow
def test_an_oracle_trajectory_is_exactly_what_the_local_policy_sees_and_it_passes(policy):
    task = load_tasks("toy", include=["create-script"])[0]
    (traj,) = oracle_trajectories([task], policy)
    assert traj.reward == 1.0 and traj.verifier["passed"]
    assert traj.outcome == "completed" and traj.action_format == "bash_block"
    assert [c.text for c in traj.chunks] == oracle_replies(task)
    assert len(traj.chunks) == 3  # two commands, then the final answer
    assert [c.prompt_continues for c in traj.chunks] == [False, True, True]
    assert not any(c.failed for c in traj.chunks)
    assert all(c.policy_version == policy.version for c in traj.chunks)

    # The sequence is the chat template's rendering of the whole run, token for
    # token, up to the final end-of-turn token the last reply stops on.
    ids = _sequence(traj)
    rendered = policy.tokenizer(
        policy.render(traj.messages(), generation_prompt=False), add_special_tokens=False
    )["input_ids"]
    assert ids == rendered[: len(ids)] and len(rendered) - len(ids) == 1

    # Packing rebuilds that sequence and masks exactly the replies' tokens.
    (sample,) = samples_from_trajectory(traj)
    assert sample.input_ids == ids and sample.reward == 1.0
    generated = [t for c in traj.chunks for t in c.token_ids]
    assert [t for t, m in zip(sample.input_ids, sample.loss_mask, strict=True) if m] == generated
    batch = pack([sample], pad_id=policy.pad_id)
    assert not batch.token_failed.any()

    # Behaviour log-probs: a fresh forward pass over the sequence agrees.
    with torch.no_grad():
        logp = torch.log_softmax(policy.model(torch.tensor([ids])).logits[0].float(), -1)
    mask = batch.loss_mask[0]
    positions = mask.nonzero()[:, 0]
    fresh = logp[positions - 1, torch.tensor(ids)[positions]]
    recorded = torch.tensor([lp for c in traj.chunks for lp in c.logprobs])
    assert torch.allclose(fresh, recorded, atol=1e-4)


@pytest.mark.slow
def test_teacher_forcing_leaves_the_conversation_where_generating_the_reply_would(policy):
    """After a teacher-forced turn, the policy's next prompt is what ``complete`` builds."""
    task = load_tasks("toy", include=["make-directory"])[0]
    traj = run_scripted(task, oracle_replies(task), policy)
    first, second = traj.chunks[0], traj.chunks[1]
    conv = "probe"
    head = traj.head()
    forced = policy.teacher_force(head, first.text, conversation_id=conv)
    assert forced.prompt_token_ids == first.prompt_token_ids
    assert forced.token_ids == first.token_ids
    assert policy.context_ids(conv) == first.prompt_token_ids + first.token_ids
    # A real generation for the next turn continues from there with the same new ids.
    upto_second = head + traj.turn_messages(0, 1)
    generated = policy.complete(upto_second, conversation_id=conv, max_new_tokens=2)
    assert generated.prompt_continues
    assert generated.prompt_token_ids == second.prompt_token_ids
    policy.end_conversation(conv)


@pytest.mark.slow
def test_a_failed_tool_call_is_marked_and_left_out_of_the_sft_mask(policy):
    task = load_tasks("toy", include=["make-directory"])[0]
    # A first command that runs past the tool timeout fails; the solution then works.
    replies = ["```bash\nsleep 30\n```", *oracle_replies(task)]
    traj = run_scripted(task, replies, policy, config=oracle_agent_config(tool_timeout_s=1))
    assert traj.reward == 1.0
    assert [c.failed for c in traj.chunks] == [True, False, False]
    batch = pack(samples_from_trajectory(traj), pad_id=policy.pad_id)
    failed_tokens = batch.token_failed[0] & batch.loss_mask[0]
    assert int(failed_tokens.sum()) == len(traj.chunks[0].token_ids)
    assert (batch.chunk_index[0][failed_tokens] == 0).all()


@pytest.mark.slow
def test_a_reference_solution_that_does_not_pass_gives_no_trajectory(policy, tmp_path):
    # The same environment (so the cached image) with a solution that does the wrong thing.
    source = load_tasks("toy", include=["make-directory"])[0].path
    shutil.copytree(source, tmp_path / "wrong-solution")
    (tmp_path / "wrong-solution/solution/solve.sh").write_text("#!/bin/bash\nmkdir /app/nope\n")
    task = load_task(tmp_path / "wrong-solution")
    kept = oracle_trajectories([task], policy, out=tmp_path / "oracle.jsonl")
    assert kept == []
    assert (tmp_path / "oracle.jsonl").read_text() == ""
