"""The harness's two outcomes short of a result: a measurement that failed (BenchError) and a
workload the system has no API for (Unsupported). Standard library only, like bench/run.py."""


class BenchError(Exception):
    pass


class Unsupported(Exception):
    pass
