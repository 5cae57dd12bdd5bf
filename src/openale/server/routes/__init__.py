"""The control plane's HTTP routes, one module per thing they serve.

Every route raises typed exceptions and lets ``openale.server.errors`` turn them
into a status and the one JSON error body.
"""
