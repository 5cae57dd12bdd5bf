"""Data: the data engine (task and trajectory generation, instance validation, filtering,
error-masked SFT sets; DESIGN "Data"), built on the bench's episode runner.

Empty for now: it comes in a later issue. Oracle trajectories live in
``openale.bench.oracle`` and results statistics in ``openale.bench.stats``.
"""
