"""The floor both benchmarks stand on (files, cached records, statistics, device, provenance,
Fashion-MNIST files, progress and ETA, the job executor, timing, markdown, plots); it imports
nothing of either benchmark."""
