"""``tools/convert_fmkt_ckpt_to_student.py``: export the student of a distillation checkpoint.

Command line::

    CONFIG CHECKPOINT OUT_DIR [--theta] [--cfg-options KEY=VALUE ...]

Writes ``OUT_DIR/student_config.py`` and ``OUT_DIR/student.pth``, which ``tools/test.py``
evaluates without the teacher. By default the student keeps its flow head (the implicit
ensemble); ``--theta`` exports the FM-KT^Theta student, an ordinary classifier with a linear
head: the flow head folded into it when its meta-encoder is affine (``LinearMetaEncoder``,
exact), else the trained ``theta_fc`` head (``model.architecture.head.theta=True``).
"""
import argparse
from typing import List, Optional

from mmengine.config import DictAction

from .export import StudentExport, export_student

__all__ = ['parse_args', 'main']


def parse_args(argv: Optional[List[str]] = None) -> argparse.Namespace:
    """Parse the converter's command line (``sys.argv[1:]`` when ``argv`` is None)."""
    parser = argparse.ArgumentParser(description='Export the student of a distillation run')
    parser.add_argument('config', help='the distillation config')
    parser.add_argument('checkpoint', help='a checkpoint written by training that config')
    parser.add_argument('out_dir', help='folder for student_config.py and student.pth')
    parser.add_argument('--theta', action='store_true',
                        help='export the FM-KT^Theta student (plain linear head: the folded '
                        'flow of an affine meta-encoder, else the trained theta_fc)')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction,
                        help='override settings in the config')
    return parser.parse_args(argv)


def main(argv: Optional[List[str]] = None) -> StudentExport:
    """Export as the converter does, print where to, and return the :class:`StudentExport`."""
    args = parse_args(argv)
    result = export_student(args.config, args.checkpoint, args.out_dir, theta=args.theta,
                            cfg_options=args.cfg_options)
    print(f"exported {result['mode']} student ({result['num_params']:,} parameters):\n"
          f"  config:     {result['config']}\n  checkpoint: {result['checkpoint']}")
    return result
