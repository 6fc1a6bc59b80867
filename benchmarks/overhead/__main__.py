"""``python -m benchmarks.overhead``: the ResNet-34 -> ResNet-18 table (:mod:`.resnet`)."""
from .resnet import main

main()
