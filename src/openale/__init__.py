"""openale: an open agentic learning ecosystem.

Layers, from the bottom up: ``openale.sandbox`` (containers agents act in),
``openale.tasks``, ``openale.agent``, ``openale.bench``, ``openale.rl``.
"""

__version__ = "0.1.0"
