"""Export the student of an FM-KT (or baseline) distillation checkpoint as a standalone model.

Usage:
    python tools/convert_fmkt_ckpt_to_student.py CONFIG CHECKPOINT OUT_DIR [--theta]
        [--cfg-options KEY=VALUE ...]

Writes OUT_DIR/student_config.py and OUT_DIR/student.pth, which ``tools/test.py`` evaluates
without the teacher; ``--theta`` exports a plain linear-head student. The command is
:func:`fmkt_plugin.apis.convert.main`.
"""
import os.path as osp
import sys

# Make the repository importable when the plugin is not installed (e.g. a plain checkout).
sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from fmkt_plugin.apis.convert import main, parse_args  # noqa: E402,F401

if __name__ == '__main__':
    main()
