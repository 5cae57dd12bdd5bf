"""The sandbox control plane: ``ale serve`` (FastAPI), its store, auth, EnvHub and metrics."""
