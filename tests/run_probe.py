"""A hook that records what a training process does, for the end-to-end launcher tests.

Imported into training subprocesses through ``custom_imports`` (``tests/`` on PYTHONPATH).

- Every training iteration's total loss of this process (in DDP: this rank's loss) is kept.
- A Python audit hook notes every file this process opens for writing, so a test can tell
  which rank wrote which files (torch's and mmengine's writers go through ``open``).
- ``pause_at=(epoch, iter)`` stops the process after that training iteration (1-based
  epoch, 1-based iteration within it): it writes ``paused`` into ``out_dir`` and sleeps
  until it is killed, so a test can kill it at a known point of an epoch.

At the end of the run the record is written to ``out_dir/rank<rank>.json``.
"""
import json
import os
import os.path as osp
import sys
import time
from typing import List, Optional, Sequence

from mmengine.hooks import Hook
from mmengine.registry import HOOKS

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
_WRITTEN: List[str] = []


def _audit(event: str, args) -> None:
    if event == 'os.rename':  # os.rename and os.replace (atomic writes land by renaming)
        if isinstance(args[1], str):
            _WRITTEN.append(osp.abspath(args[1]))
        return
    if event != 'open':
        return
    path, mode, flags = args
    if not isinstance(path, str):
        return
    if (isinstance(mode, str) and any(c in mode for c in 'wax+')) or (
            mode is None and isinstance(flags, int) and flags & _WRITE_FLAGS):
        _WRITTEN.append(osp.abspath(path))


sys.addaudithook(_audit)


@HOOKS.register_module()
class RunProbeHook(Hook):
    """Record per-iteration losses and written files; optionally pause for a kill."""

    priority = 'LOWEST'

    def __init__(self, out_dir: str, pause_at: Optional[Sequence[int]] = None) -> None:
        self.out_dir = out_dir
        self.pause_at = tuple(pause_at) if pause_at else None
        self.losses: List[float] = []

    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        self.losses.append(float(outputs['loss']))
        if self.pause_at == (runner.epoch + 1, batch_idx + 1):
            with open(osp.join(self.out_dir, 'paused'), 'w') as f:
                f.write(f'{runner.epoch + 1} {batch_idx + 1}\n')
            while True:  # wait for SIGKILL
                time.sleep(1)

    def after_run(self, runner) -> None:
        work_dir = osp.abspath(runner.work_dir) + os.sep
        record = dict(rank=runner.rank, world_size=runner.world_size, losses=self.losses,
                      written=sorted({p for p in _WRITTEN if p.startswith(work_dir)}))
        with open(osp.join(self.out_dir, f'rank{runner.rank}.json'), 'w') as f:
            json.dump(record, f)
