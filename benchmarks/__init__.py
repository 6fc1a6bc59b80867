"""The benchmarks, in layers: :mod:`benchmarks.common` (files, cached records, statistics,
device, provenance, progress and ETA, the job executor, timing, markdown and plots) imports
nothing above it; on it stand :mod:`benchmarks.classification` (Fashion-MNIST: methods built
from the shipped configs, tuning, planning, jobs, engine, report, ...),
:mod:`benchmarks.detection` and :mod:`benchmarks.overhead`, none importing another;
:mod:`benchmarks.run` (``python -m benchmarks.run``, what ``scripts/benchmark.sh`` runs) is the
application on top (and ``scripts/gpu_check.py`` above it).
"""
