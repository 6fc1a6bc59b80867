"""Train a model (FM-KT distillation, a baseline or a plain model) from an OpenMMLab config.

Usage:
    python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|PATH]] [--amp]
                          [--auto-scale-lr] [--no-validate]
                          [--cfg-options KEY=VALUE ...] [--launcher {none,pytorch,slurm,mpi}]

The command is :func:`fmkt_plugin.apis.train.main`.
"""
import os.path as osp
import sys

# Make the repository importable when the plugin is not installed (e.g. a plain checkout).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from fmkt_plugin.apis.train import build_runner, main, parse_args  # noqa: E402,F401

if __name__ == '__main__':
    main()
