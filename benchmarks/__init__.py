"""Embedded Fashion-MNIST benchmark of FM-KT against KD/DKD/DIST, and the overhead benchmark.

Entry point: ``python benchmarks/run.py --profile quick|default|full``, which
``scripts/benchmark.sh`` runs.
"""
