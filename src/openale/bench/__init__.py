"""Running agents on tasks: one episode runner, parallel bench runs, oracles, scores, reports."""

from openale.bench.agents import AgentResult, NopAgent, OracleAgent, TaskAgent, load_agent
from openale.bench.episode import EpisodeResult, EpisodeRunner
from openale.bench.report import pass_at_k, summarize, write_report
from openale.bench.runner import BenchRun, read_results
from openale.bench.trial import TrialResult, run_trial

__all__ = [
    "TaskAgent",
    "AgentResult",
    "BenchRun",
    "EpisodeResult",
    "EpisodeRunner",
    "NopAgent",
    "OracleAgent",
    "TrialResult",
    "load_agent",
    "pass_at_k",
    "read_results",
    "run_trial",
    "summarize",
    "write_report",
]
