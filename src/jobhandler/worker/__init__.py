"""Workers: claim, run and settle jobs."""

from jobhandler.worker.worker import Worker

__all__ = ["Worker"]
