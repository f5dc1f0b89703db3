"""Observability: job events, and the logs, metrics and traces that subscribe to them."""
