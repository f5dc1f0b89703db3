"""``python -m jobhandler``: the same command as the ``jobhandler`` script."""

from jobhandler.process.handover import launch

launch()
