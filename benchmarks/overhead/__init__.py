"""Overhead benchmark: train-step and inference time relative to KD (PKD for detection), from
the repository's configs with random weights. :mod:`.resnet`: FM-KT on ResNet-34 -> ResNet-18
(``python -m benchmarks.overhead``); :mod:`.rivals`: DiffKD and RDR on the same pair;
:mod:`.vit`: FM-KT + ViTKD on DeiT-T; :mod:`.detection`: the FPN level on the COCO
detectors; :mod:`.report`: the table. It stands
on :mod:`benchmarks.common` alone."""
from typing import Callable, Optional, Union

__all__ = ['run_table']


def run_table(cfg: dict, device: str, amp: Optional[str] = None, threads: int = 0,
              say: Optional[Callable[[str], None]] = None,
              compile_flow: Union[bool, dict] = False) -> dict:
    """The overhead table of a profile's ``overhead`` entry (``size, batch, repeats, warmup``):
    FM-KT's rows (every flow's ``compile`` set to ``compile_flow``), then DiffKD's and RDR's
    (``rivals``, default on), FM-KT + ViTKD's on DeiT-T (``vit``, default off) and, on the CPU,
    the FPN level's (``detection``)."""
    from .resnet import run_overhead
    from .rivals import run_rival_overhead
    size = (cfg['size'], cfg['batch'], cfg['repeats'], cfg['warmup'])
    result = run_overhead(*size, threads=threads, progress=say, device=device, amp=amp,
                          compile_flow=compile_flow)
    if cfg.get('rivals', True):
        result['ratios'] += run_rival_overhead(*size, device=device, progress=say)['ratios']
    if cfg.get('vit'):
        from .vit import run_vit_overhead
        result['ratios'] += run_vit_overhead(*size, device=device, progress=say)['ratios']
    if cfg.get('detection') and device == 'cpu':
        from .detection import det_overhead_rows
        result['ratios'] += det_overhead_rows(cfg['repeats'], say or (lambda msg: None))
    return result
