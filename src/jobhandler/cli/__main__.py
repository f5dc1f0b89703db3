"""``python -m jobhandler.cli``: the same command as the ``jobhandler`` script (``python -m
jobhandler`` starts faster: it hands secrets over before loading the CLI)."""

from jobhandler.__main__ import launch

launch()
