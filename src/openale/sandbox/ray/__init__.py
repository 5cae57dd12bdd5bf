"""Sandboxes spread over a Ray cluster, for the control plane's Ray backend.

``backend`` places sandboxes on Docker nodes; ``host`` is the actor that runs
one next to its container; ``sandbox`` is the caller's handle on it.
"""
