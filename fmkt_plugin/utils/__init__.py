"""Utilities: small on-disk datasets for smoke tests and examples."""
from .toy_coco import write_coco_detection
from .toy_data import write_cifar_folder, write_imagenet_folder

__all__ = ['write_imagenet_folder', 'write_cifar_folder', 'write_coco_detection']
