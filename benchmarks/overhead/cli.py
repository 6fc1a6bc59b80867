"""``python -m benchmarks.overhead``: the overhead table from the command line.

Run from the repository root::

    python -m benchmarks.overhead [--size 224 --batch 8 --repeats 5] [--device cuda --amp bf16]
        [--compile-flow [flow] [--compile-mode reduce-overhead]] [--rivals] [--vit] [--det]
        [--out overhead.json]

FM-KT's rows on ResNet-34 -> ResNet-18 (:mod:`.resnet`); ``--rivals`` adds DiffKD's and RDR's
(:mod:`.rivals`), ``--vit`` FM-KT + ViTKD over ViTKD on DeiT-T (:mod:`.vit`), ``--det`` the
FPN level's over PKD on both COCO detectors (:mod:`.detection`,
CPU only), as the ``extended`` benchmark profile's table has them.
"""
import argparse
import json
from typing import List, Optional

from ..common.device import AMP_DTYPES
from . import run_table
from .report import overhead_markdown
from .resnet import compile_value

__all__ = ['main']


def main(argv: Optional[List[str]] = None) -> dict:
    """Parse ``argv``, measure, print the table and optionally write the JSON; returns it."""
    parser = argparse.ArgumentParser(prog='python -m benchmarks.overhead',
                                     description=__doc__.split('\n')[0])
    parser.add_argument('--size', type=int, default=224)
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--repeats', type=int, default=5)
    parser.add_argument('--warmup', type=int, default=2)
    parser.add_argument('--threads', type=int, default=0)
    parser.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    parser.add_argument('--amp', default=None, choices=sorted(AMP_DTYPES),
                        help='mixed precision (mmengine AmpOptimWrapper); needs --device cuda')
    parser.add_argument('--compile-flow', nargs='?', const='encoder', default=None,
                        choices=['encoder', 'flow'],
                        help='torch.compile every flow: its meta-encoder (no value: '
                        'compile=True) or the whole unrolled flow (flow: compile.scope)')
    parser.add_argument('--compile-mode', default=None,
                        help='torch.compile mode with --compile-flow, e.g. reduce-overhead '
                        '(CUDA graphs)')
    parser.add_argument('--rivals', action='store_true',
                        help="add DiffKD's and RDR's train-step and inference rows")
    parser.add_argument('--vit', action='store_true',
                        help='add the train step of FM-KT + ViTKD over ViTKD alone on DeiT-T')
    parser.add_argument('--det', action='store_true',
                        help='add the FPN level over PKD on RetinaNet and Faster R-CNN (CPU)')
    parser.add_argument('--out', default=None, help='write the result JSON here')
    args = parser.parse_args(argv)
    if args.compile_mode and not args.compile_flow:
        parser.error('--compile-mode needs --compile-flow')
    if args.amp and args.device != 'cuda':
        parser.error('--amp needs --device cuda (mmengine\'s AmpOptimWrapper runs on CUDA)')
    if args.det and args.device != 'cpu':
        parser.error('--det measures on the CPU only')
    say = lambda msg: print(msg, flush=True)  # noqa: E731
    cfg = dict(size=args.size, batch=args.batch, repeats=args.repeats, warmup=args.warmup,
               rivals=args.rivals, vit=args.vit, detection=args.det)
    result = run_table(cfg, args.device, args.amp, args.threads, say,
                       compile_value(args.compile_flow, args.compile_mode))
    print(overhead_markdown(result))
    if args.out:
        with open(args.out, 'w') as f:
            json.dump(result, f, indent=1)
    return result
