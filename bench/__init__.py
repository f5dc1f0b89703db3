"""Benchmarks: Job Handler beside its Python peers. Run ``python bench/run.py --quick``."""
