"""``ale sandbox``: create, use and clean up sandboxes, embedded or on ``ALE_SERVER``.

Each module adds its commands to ``sandbox_app``. The commands use only the
sandbox API (``AnySandbox``), so they work the same with and without a server.
"""

from openale.cli.sandbox.app import sandbox_app

# Importing a module registers its commands, in the order ``--help`` lists them.
# isort: off
from openale.cli.sandbox import lifecycle, run, copy, audit  # noqa: F401, E402
# isort: on

__all__ = ["sandbox_app"]
