"""``python -m jobhandler.cli``: the same command as the ``jobhandler`` script."""

from jobhandler.cli import main

main()
