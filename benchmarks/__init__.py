"""Embedded Fashion-MNIST benchmark of FM-KT against KD/DKD/DIST, and the overhead benchmark.

Run from the repository root: ``python -m benchmarks.run --profile quick|default|full|gpu`` (what
``scripts/benchmark.sh`` runs), ``python -m benchmarks.run --tune`` (equal tuning on the
validation split) and ``python -m benchmarks.overhead``.

Modules by role: :mod:`~benchmarks.methods` (one record per method), :mod:`~benchmarks.configs`
(shared config pieces, hyperparameters, profiles), :mod:`~benchmarks.tuning` (grid and picks),
:mod:`~benchmarks.planning`, :mod:`~benchmarks.executor`, :mod:`~benchmarks.jobs` (one teacher or
run), :mod:`~benchmarks.engine` (training and evaluation), :mod:`~benchmarks.report`,
:mod:`~benchmarks.plots`, :mod:`~benchmarks.assembly` and :mod:`~benchmarks.run` (command line).
The detection benchmark is :mod:`benchmarks.detection`; both stand on :mod:`benchmarks.common`
(files, cached records, statistics, device, provenance, progress and ETA, the job executor,
timing, markdown and plots), which imports neither.
"""
