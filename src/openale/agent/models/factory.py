"""``--model`` strings to models: ``replay:FILE``, ``local:NAME`` (or ``smollm2``), or an
OpenAI-compatible model name (any name, when ``--base-url`` is given)."""

from __future__ import annotations

from openale.agent.models.base import Model
from openale.agent.models.openai_model import OpenAIModel
from openale.agent.models.replay import RecordingModel, ReplayModel

LOCAL_NAMES = {"smollm2", "smollm2-135m-instruct"}


def make_model(
    spec: str,
    *,
    base_url: str | None = None,
    api_key: str | None = None,
    record: str | None = None,
    **kwargs,
) -> Model:
    if spec.startswith("replay:"):
        model: Model = ReplayModel(spec.removeprefix("replay:"))
    elif base_url is None and (spec.startswith("local:") or spec in LOCAL_NAMES):
        # With --base-url, "smollm2" names the model a server (ale serve-model) hosts.
        from openale.agent.models.local import LocalPolicy

        model = LocalPolicy.from_pretrained(spec.removeprefix("local:"), **kwargs)
    else:
        model = OpenAIModel(spec, base_url=base_url, api_key=api_key, **kwargs)
    return RecordingModel(model, record) if record else model
