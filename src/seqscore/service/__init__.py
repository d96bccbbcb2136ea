"""Use cases: what the API, the dashboard and the CLI do, independent of HTTP."""
