"""The Fashion-MNIST classification benchmark: every method built from the shipped config files
plus the benchmark's settings (:mod:`.configs`, :mod:`.methods`), tuned on a validation split
(:mod:`.tuning`), planned into jobs (:mod:`.planning`), trained and scored (:mod:`.jobs`,
:mod:`.engine`) and reported (:mod:`.report`, :mod:`.plots`); ``python -m benchmarks.run`` runs
it."""
