"""Evaluate a checkpoint: a distillation model (its student with the flow head) or an exported
student, from an OpenMMLab config.

Usage:
    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
                         [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

The command is :func:`fmkt_plugin.apis.test.main`.
"""
import os.path as osp
import sys

# Make the repository importable when the plugin is not installed (e.g. a plain checkout).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from fmkt_plugin.apis.test import main, parse_args  # noqa: E402,F401

if __name__ == '__main__':
    main()
