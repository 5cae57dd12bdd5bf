"""Data: oracle trajectories, instance validation, filtering, error-masked SFT (DESIGN "Data")."""

from openale.data.oracle import (
    OracleError,
    ScriptedPolicy,
    oracle_agent_config,
    oracle_replies,
    oracle_trajectories,
    run_episode,
    run_scripted,
    solution_commands,
)

__all__ = [
    "OracleError",
    "ScriptedPolicy",
    "oracle_agent_config",
    "oracle_replies",
    "oracle_trajectories",
    "run_episode",
    "run_scripted",
    "solution_commands",
]
