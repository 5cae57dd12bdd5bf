"""RL post-training: rollout -> reward -> train, with GRPO/PPO/TOPR/IPA (see DESIGN.md, "RL")."""
