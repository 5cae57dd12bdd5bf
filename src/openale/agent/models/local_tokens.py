"""Token bookkeeping of a local policy: the exact ids of each conversation so far.

Per ``conversation_id`` the policy keeps the token sequence so far and only
tokenizes the messages that are new since the previous call; generated ids
are never re-tokenized. When the history was rewritten (e.g. by context
compression) the whole prompt is tokenized afresh.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

_SENTINEL = "\x00openale-reply\x00"


@dataclass
class _Conversation:
    n_messages: int  # messages in the previous call
    prompt_text: str  # their rendering, generation prompt included
    token_ids: list[int]  # everything so far, the last generation included
    generated: list[int]  # the last generation


class ConversationTokens:
    """A tokenizer's chat template plus, per conversation, its exact token ids (LRU-bounded)."""

    def __init__(self, tokenizer: Any, max_conversations: int = 1024):
        self.tokenizer = tokenizer
        self.max_conversations = max_conversations
        self._conversations: OrderedDict[str, _Conversation] = OrderedDict()
        self._lock = threading.Lock()
        self._tokenizer_lock = threading.Lock()  # a fast tokenizer is not safe to share
        self.end_of_turn = self.encode(_end_of_turn_text(tokenizer))

    # -- text and ids --------------------------------------------------------------------

    def render(self, messages: list[dict[str, Any]], generation_prompt: bool = True) -> str:
        return self.tokenizer.apply_chat_template(
            [_plain(m) for m in messages],
            tokenize=False,
            add_generation_prompt=generation_prompt,
        )

    def encode(self, text: str) -> list[int]:
        # The chat template writes the special tokens itself.
        with self._tokenizer_lock:
            return list(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    # -- conversations -------------------------------------------------------------------

    def prompt_ids(
        self, messages: list[dict[str, Any]], conversation_id: str | None
    ) -> tuple[list[int], list[int], str]:
        """``(context, new_ids, prompt_text)``: the ids already held for the conversation
        (empty when the prompt is tokenized afresh) and the ids to add after them."""
        prompt_text = self.render(messages)
        with self._lock:
            conv = self._conversations.get(conversation_id) if conversation_id else None
        new_ids = self._continuation(conv, messages, prompt_text) if conv else None
        if new_ids is None:
            return [], self.encode(prompt_text), prompt_text
        return conv.token_ids, new_ids, prompt_text

    def remember(
        self,
        conversation_id: str,
        n_messages: int,
        prompt_text: str,
        prompt_ids: list[int],
        generated: list[int],
    ) -> None:
        """The conversation's state after a turn: its prompt, then what was generated."""
        with self._lock:
            self._conversations[conversation_id] = _Conversation(
                n_messages, prompt_text, prompt_ids + generated, generated
            )
            self._conversations.move_to_end(conversation_id)
            while len(self._conversations) > self.max_conversations:
                self._conversations.popitem(last=False)

    def context_ids(self, conversation_id: str) -> list[int]:
        """The exact token sequence of a conversation so far (prompts and generations)."""
        with self._lock:
            conv = self._conversations.get(conversation_id)
        if conv is None:
            raise KeyError(f"no conversation {conversation_id!r}")
        return list(conv.token_ids)

    def fork(self, source: str, target: str) -> bool:
        """Start ``target`` from ``source``'s state (branching, or renaming); False if unknown."""
        with self._lock:
            conv = self._conversations.get(source)
            if conv is None:
                return False
            self._conversations[target] = _Conversation(
                conv.n_messages, conv.prompt_text, list(conv.token_ids), list(conv.generated)
            )
            return True

    def __len__(self) -> int:
        """How many conversations' token sequences are held."""
        with self._lock:
            return len(self._conversations)

    def __contains__(self, conversation_id: object) -> bool:
        with self._lock:
            return conversation_id in self._conversations

    def end(self, conversation_id: str) -> None:
        with self._lock:
            self._conversations.pop(conversation_id, None)

    def _continuation(
        self, conv: _Conversation, messages: list[dict[str, Any]], prompt_text: str
    ) -> list[int] | None:
        """Ids to append after the last generation, or None when the history was rewritten."""
        k = conv.n_messages
        if len(messages) <= k or messages[k].get("role") != "assistant":
            return None
        with_reply = self.render(messages[: k + 1], generation_prompt=False)
        if not with_reply.startswith(conv.prompt_text) or not prompt_text.startswith(with_reply):
            return None
        # The template closes the reply with an end-of-turn the generation may
        # lack (a stop string or the length limit ended it): add what is missing.
        eot, gen = self.end_of_turn, conv.generated
        done = next((j for j in range(len(eot), 0, -1) if gen[-j:] == eot[:j]), 0)
        return eot[done:] + self.encode(prompt_text[len(with_reply) :])


def _end_of_turn_text(tokenizer: Any) -> str:
    """What the chat template writes after an assistant message's content (``<|im_end|>\\n``)."""
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "x"}, {"role": "assistant", "content": _SENTINEL}],
        tokenize=False,
    )
    return text.split(_SENTINEL, 1)[1]


def _plain(message: dict[str, Any]) -> dict[str, Any]:
    """A message as a plain chat template expects it: ``content`` always a string."""
    content = message.get("content")
    if content is None:
        content = ""
    elif isinstance(content, list):  # OpenAI content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return {**message, "content": content}
