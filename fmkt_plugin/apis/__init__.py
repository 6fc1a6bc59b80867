"""Helpers shared by the command-line tools."""
from .config import build_runner_config, load_config

__all__ = ['build_runner_config', 'load_config']
