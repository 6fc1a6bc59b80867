"""The floor both benchmarks stand on; it imports nothing of either benchmark.

:mod:`~benchmarks.common.files` (atomic JSON/tensor writes, the repository's tools),
:mod:`~benchmarks.common.store` (cached job records under one hash),
:mod:`~benchmarks.common.stats` (paired t intervals over seeds),
:mod:`~benchmarks.common.device`, :mod:`~benchmarks.common.provenance` (machine, software, data),
:mod:`~benchmarks.common.fmnist` (the Fashion-MNIST files),
:mod:`~benchmarks.common.eta` (progress lines and the ETA), :mod:`~benchmarks.common.executor`
(jobs in dependency order, in a process pool), :mod:`~benchmarks.common.timing` (interleaved
timing and overhead ratios), :mod:`~benchmarks.common.rendering` (markdown) and
:mod:`~benchmarks.common.plots` (seed dots, forest plots).
"""
