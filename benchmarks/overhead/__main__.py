"""``python -m benchmarks.overhead``: the overhead table (:mod:`.cli`)."""
from .cli import main

main()
