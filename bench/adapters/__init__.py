"""One module per measured system, imported by ``adapter.py`` in that system's own virtualenv."""
