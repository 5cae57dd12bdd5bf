"""The ``ale`` command."""
