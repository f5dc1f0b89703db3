"""Running and supervising worker and server processes for the CLI."""
