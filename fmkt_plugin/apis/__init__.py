"""Helpers shared by the command-line tools."""
from .config import build_runner_config, load_config
from .export import StudentExport, export_student

__all__ = ['build_runner_config', 'load_config', 'export_student', 'StudentExport']
