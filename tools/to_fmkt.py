"""Turn a logit-level or FPN-level distillation config (MMRazor's or this repository's) into an
FM-KT config that inherits it.

Usage:
    python tools/to_fmkt.py CONFIG -o OUT.py [--num-steps 8] [--test-num-steps N]

The command is :func:`fmkt_plugin.apis.to_fmkt.main`.
"""
import os.path as osp
import sys

# Make the repository importable when the plugin is not installed (e.g. a plain checkout).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import fmkt_plugin  # noqa: E402,F401  (compat fixes before mmrazor is imported)
from fmkt_plugin.apis.to_fmkt import main, parse_args  # noqa: E402,F401

if __name__ == '__main__':
    main()
