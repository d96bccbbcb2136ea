"""HTTP: the /v3 SEQ API, management endpoints, our own API and the dashboard."""
