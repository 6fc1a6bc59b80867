"""One command that checks every GPU claim of the project, and writes what it measured.

Parts (each recorded as passed or failed, with its time; a failed part does not stop the others):

* ``classification``: ``tools/train.py`` (``--amp`` on CUDA) of the ResNet-34 -> ResNet-18 FM-KT
  config on a tiny ImageNet-format folder, ``tools/test.py`` of its checkpoint, the converter, and
  ``tools/test.py`` of the exported student (same top-1 as the distillation model).
* ``detection_fmnist``: the detection benchmark's RetinaNet teacher, PKD and FM-KT (FPN) on the
  Fashion-MNIST scenes (``--amp``), scored by mmdet's CocoMetric; the FM-KT student exported and
  scored again through ``tools/test.py``, with the same detections.
* ``faster_rcnn``: a training epoch (2 iterations) and an evaluation of the COCO Faster R-CNN FM-KT
  config on a toy COCO-format set, ``--amp``.
* ``focal_loss``: RetinaNet's sigmoid focal loss through the mmcv op (with mmcv-lite, fmkt's
  torch route: ``fmkt_plugin/compat/mmcv_ext.py``), forward and backward, timed against the
  RetinaNet R-50 train step it sits in, at COCO's 1333x800 and batch 2.
* ``overhead``: the overhead table (train-step and inference ratios against KD) in fp32, bf16 and
  fp16, eager and with the whole flow compiled (``mode='reduce-overhead'``: CUDA graphs).
* ``benchmark_slice``: a slice of the Fashion-MNIST benchmark's ``gpu`` profile, with the ETA it
  printed against the time it then took.

On CUDA the parts are sized to finish within about 8 minutes on one H100; on a CPU (or with
``--tiny``) each runs a tiny version (fp32 only, compiled with ``aot_eager``), so that the check
cannot rot. Writes ``gpu_check.json`` and ``gpu_check.md`` to ``--out``.

Usage::

    bash scripts/gpu_check.sh [--out benchmark_results/gpu-check] [--tiny] [--parts ...]

It stands on top of the benchmarks (:mod:`benchmarks.run`, :mod:`benchmarks.detection.run`,
:mod:`benchmarks.overhead`), the tools and the tests' fixtures (tiny data and the small-run
settings of the shipped configs, ``tests/fixtures``).
"""
import argparse
import contextlib
import io
import os
import os.path as osp
import re
import sys
import time
import traceback
from typing import Callable, Dict, List

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
# the repository's packages and the tests' fixtures (``fixtures``, not ``tests.fixtures``: a
# ``tests`` package that mmrazor installs into site-packages would shadow the folder)
for _path in (osp.join(REPO, 'tests'), REPO):
    if _path not in sys.path:
        sys.path.insert(0, _path)

# mmcv-lite's ops before anything imports mmcv.ops: an install into a --target folder (the
# carried form, scripts/gpu_check.sh --carry) has no site-packages to run the start-up hook from
import fmkt_mmcv_ext_hook  # noqa: E402

fmkt_mmcv_ext_hook.register()

from fixtures import write_coco_detection, write_imagenet_folder  # noqa: E402
from fixtures.smoke import (  # noqa: E402
    DET_TEACHERS,
    divergence,
    random_checkpoint,
    tiny_cls_options,
    tiny_det_options,
    write_child_config,
)

from benchmarks.common.files import write_json, write_text  # noqa: E402
from benchmarks.common.provenance import machine, software  # noqa: E402
from benchmarks.common.rendering import table  # noqa: E402
from fmkt_plugin.apis import convert as convert_tool  # noqa: E402
from fmkt_plugin.apis import test as test_tool  # noqa: E402
from fmkt_plugin.apis import train as train_tool  # noqa: E402

__all__ = ['PARTS', 'SIZES', 'run_check', 'main']

#: the settings of each part, for one H100-class GPU and for the tiny CPU form.
SIZES = {
    'cuda': dict(amp='fp16', cls_size=64, cls_images=8, det_iters=300, det_teacher_iters=300,
                 det_train_scenes=1000, precisions=(None, 'bf16', 'fp16'),
                 compiled=dict(scope='flow', mode='reduce-overhead'),
                 overhead=dict(size=224, batch=256, repeats=5, warmup=3),
                 focal=dict(image=(1333, 800), repeats=10, warmup=3),
                 bench=['--profile', 'gpu', '--seeds', '0', '--pairs', 'wide', '--methods', 'kd',
                        'fmkt_kd', '--epochs', '1']),
    'tiny': dict(amp=None, cls_size=32, cls_images=2, det_iters=None, det_teacher_iters=None,
                 det_train_scenes=None, precisions=(None, ),
                 compiled=dict(scope='flow', backend='aot_eager'),
                 overhead=dict(size=32, batch=2, repeats=1, warmup=1),
                 focal=dict(image=(128, 96), repeats=1, warmup=1),
                 bench=['--profile', 'smoke', '--methods', 'kd', 'fmkt_kd']),
}


def part_classification(work: str, size: dict) -> dict:
    root, _ = write_imagenet_folder(osp.join(work, 'imagenet'), num_classes=4,
                                    per_class={'train': size['cls_images'], 'val': 2})
    opts = tiny_cls_options(root, size=size['cls_size'], batch_size=2)
    opts['model.teacher_ckpt'] = random_checkpoint(
        'mmpretrain::resnet/resnet34_8xb32_in1k.py', osp.join(work, 'teacher.pth'))
    cfg = write_child_config(work, osp.join(REPO, 'configs/fmkt/resnet34_res18_in1k.py'), opts)
    runner = train_tool.main([cfg, '--work-dir', osp.join(work, 'train')] +
                             ['--amp'] * bool(size['amp']))
    wrapper = type(runner.optim_wrapper).__name__
    unstable = divergence(runner.message_hub.log_scalars['train/loss'].data[0])
    ckpt = osp.join(work, 'train', 'epoch_1.pth')
    test = test_tool.main
    distill = test([cfg, ckpt, '--work-dir', osp.join(work, 'test')])
    exported = convert_tool.main([cfg, ckpt, osp.join(work, 'student')])
    student = test([exported['config'], exported['checkpoint'], '--work-dir',
                    osp.join(work, 'test_student')])
    same = distill['accuracy/top1'] == student['accuracy/top1']
    return dict(ok=same and unstable is None, optim_wrapper=wrapper,
                top1_distill=distill['accuracy/top1'], top1_exported=student['accuracy/top1'],
                note=unstable or ('' if same else 'the exported student scores differently'))


def part_detection_fmnist(work: str, size: dict) -> dict:
    from benchmarks.detection.run import main as det_main
    argv = ['--profile', 'smoke', '--methods', 'pkd', 'fmkt', '--seeds', '0', '--jobs', '1',
            '--out', osp.join(work, 'det'), '--amp', size['amp'] or 'none']
    for flag, key in (('--iters', 'det_iters'), ('--teacher-iters', 'det_teacher_iters'),
                      ('--train-scenes', 'det_train_scenes')):
        if size[key] is not None:
            argv += [flag, str(size[key])]
    payload = det_main(argv)
    runs = {r['method']: r for r in payload['runs']}
    export = runs['fmkt']['export']
    same = export['images_mismatched'] == 0 and export['max_box_diff'] <= 1e-3 and \
        export['max_score_diff'] <= 1e-4
    return dict(ok=same, amp=payload['meta']['amp'], iters=payload['meta']['iters'],
                mAP={m: runs[m]['mAP'] for m in ('pkd', 'fmkt', 'fmkt_export')},
                export_max_box_diff=export['max_box_diff'],
                export_images_mismatched=export['images_mismatched'],
                note='' if same else 'the exported student gives other detections')


def part_faster_rcnn(work: str, size: dict) -> dict:
    from fmkt_plugin.compat.mmcv_fixes import mmcv_has_cuda_kernels
    coco = write_coco_detection(osp.join(work, 'coco'), num_images={'train': 4, 'val': 2})
    teacher = random_checkpoint(DET_TEACHERS['faster-rcnn'], osp.join(work, 'teacher.pth'))
    cfg = write_child_config(
        work, osp.join(REPO, 'configs/fmkt/fmkt_faster-rcnn_r101_r50_fpn_2x_coco.py'),
        tiny_det_options(coco, 'faster-rcnn', teacher))
    runner = train_tool.main([cfg, '--work-dir', osp.join(work, 'train')] +
                             ['--amp'] * bool(size['amp']))
    losses = [float(v) for v in runner.message_hub.log_scalars['train/loss'].data[0]]
    mAP = runner.message_hub.log_scalars.get('val/coco/bbox_mAP')
    unstable = divergence(losses)
    ok = runner.iter == 2 and unstable is None and mAP is not None
    return dict(ok=ok, iters=runner.iter, losses=losses, note=unstable or '',
                mAP=None if mAP is None else float(mAP.current()),
                mmcv_cuda_kernels=mmcv_has_cuda_kernels(),
                optim_wrapper=type(runner.optim_wrapper).__name__)


def _median_ms(fn: Callable, repeats: int, warmup: int, device: str) -> float:
    import statistics

    import torch
    times = []
    for i in range(warmup + repeats):
        if device == 'cuda':
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device == 'cuda':
            torch.cuda.synchronize()
        if i >= warmup:
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def part_focal_loss(work: str, size: dict, device: str) -> dict:
    import torch
    from mmcv.ops import sigmoid_focal_loss
    from mmdet.structures import DetDataSample
    from mmengine.hub import get_model
    from mmengine.optim import OptimWrapper
    from mmengine.structures import InstanceData

    from fmkt_plugin.compat.mmcv_fixes import mmcv_is_lite
    (w, h), batch = size['focal']['image'], 2
    timing = dict(repeats=size['focal']['repeats'], warmup=size['focal']['warmup'], device=device)
    torch.manual_seed(0)
    model = get_model('mmdet::retinanet/retinanet_r50_fpn_1x_coco.py',
                      pretrained=False).to(device).train()
    wrapper = OptimWrapper(torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9))
    samples = []
    for _ in range(batch):
        sample = DetDataSample(metainfo=dict(img_shape=(h, w), ori_shape=(h, w),
                                             pad_shape=(h, w), scale_factor=(1.0, 1.0)))
        xy = torch.rand(4, 2) * torch.tensor([w / 2, h / 2])
        sample.gt_instances = InstanceData(
            bboxes=torch.cat([xy, xy + torch.tensor([w / 4, h / 4])], dim=1),
            labels=torch.randint(0, 80, (4, )))
        samples.append(sample)
    data = dict(inputs=[torch.randint(0, 256, (3, h, w), dtype=torch.uint8)] * batch,
                data_samples=samples)
    step_ms = _median_ms(lambda: model.train_step(data, wrapper), **timing)

    with torch.no_grad():  # the classification scores of the same batch, as the loss sees them
        inputs = model.data_preprocessor(data, True)['inputs']
        scores = model.bbox_head(model.extract_feat(inputs))[0]
    logits = torch.cat([s.permute(0, 2, 3, 1).reshape(-1, 80) for s in scores]).contiguous()
    target = torch.randint(0, 81, (len(logits), ), device=logits.device)  # 80: background

    def focal():
        x = logits.detach().requires_grad_()
        sigmoid_focal_loss(x, target, 2.0, 0.25, None, 'mean').backward()

    focal_ms = _median_ms(focal, **timing)
    return dict(ok=True, image=f'{w}x{h}', batch=batch, anchors=len(logits),
                step_ms=round(step_ms, 2), focal_ms=round(focal_ms, 3),
                focal_share=round(focal_ms / step_ms, 4),
                # on CPU, mmdet's FocalLoss takes its pure-torch loss; the op is timed all the same
                focal_op='fmkt torch route (mmcv-lite)' if mmcv_is_lite() else 'compiled mmcv')


def part_overhead(work: str, size: dict, device: str) -> dict:
    from benchmarks.overhead.resnet import run_overhead
    tables = []
    for amp in size['precisions']:
        for compiled in (False, size['compiled']):
            result = run_overhead(**size['overhead'], device=device, amp=amp,
                                  compile_flow=compiled)
            tables.append(dict(precision=amp or 'fp32', compiled=bool(compiled),
                               setting=result['setting'],
                               ratios={r['key']: r['ratio'] for r in result['ratios']}))
    return dict(ok=True, tables=tables)


_PROGRESS = re.compile(r'^\[(\d+)m(\d+)s \| (\d+)/(\d+) done \| ETA (?:(\d+)m(\d+)s|\?)\]')


def eta_track(text: str) -> List[dict]:
    """The progress lines of a benchmark's output: elapsed seconds, jobs done, ETA seconds."""
    rows = []
    for line in text.splitlines():
        m = _PROGRESS.match(line)
        if m:
            eta = None if m[5] is None else int(m[5]) * 60 + int(m[6])
            rows.append(dict(elapsed_s=int(m[1]) * 60 + int(m[2]), done=int(m[3]),
                             total=int(m[4]), eta_s=eta))
    return rows


def part_benchmark_slice(work: str, size: dict) -> dict:
    from benchmarks.run import main as bench_main
    out = io.StringIO()

    class Tee(io.TextIOBase):
        def write(self, s):
            out.write(s)
            return sys.__stdout__.write(s)

    start = time.perf_counter()
    with contextlib.redirect_stdout(Tee()):
        bench_main(size['bench'] + ['--skip-overhead', '--out', osp.join(work, 'bench')])
    wall = time.perf_counter() - start
    track = eta_track(out.getvalue())
    first = next((r for r in track if r['eta_s'] is not None), None)
    predicted = None if first is None else first['elapsed_s'] + first['eta_s']
    return dict(ok=bool(track), wall_s=wall, first_eta=first, predicted_total_s=predicted,
                progress_lines=len(track),
                note='' if track else 'the benchmark printed no progress line')


PARTS: Dict[str, Callable] = {
    'classification': part_classification,
    'detection_fmnist': part_detection_fmnist,
    'faster_rcnn': part_faster_rcnn,
    'focal_loss': part_focal_loss,
    'overhead': part_overhead,
    'benchmark_slice': part_benchmark_slice,
}


def run_check(out: str, tiny: bool = False, parts=None) -> dict:
    """Run the parts; write ``gpu_check.json`` and ``gpu_check.md`` to ``out``."""
    import torch

    import fmkt_plugin  # noqa: F401  (compat fixes first)
    device = 'cuda' if torch.cuda.is_available() else 'cpu'
    size = SIZES['tiny' if tiny or device == 'cpu' else 'cuda']
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()
    results = {}
    for name in parts or PARTS:
        work = osp.join(out, 'work', name)
        os.makedirs(work, exist_ok=True)
        print(f'[gpu-check] {name} ...', flush=True)
        t0 = time.perf_counter()
        try:
            fn = PARTS[name]
            args = (work, size, device) if name in ('overhead', 'focal_loss') else (work, size)
            record = fn(*args)
        except Exception as err:  # a failed part is recorded, the others still run
            record = dict(ok=False, error=f'{type(err).__name__}: {err}',
                          traceback=traceback.format_exc()[-3000:])
        record['seconds'] = time.perf_counter() - t0
        results[name] = record
        print(f'[gpu-check] {name}: {"passed" if record["ok"] else "FAILED"} in '
              f'{record["seconds"]:.0f} s', flush=True)
    report = dict(machine=dict(device=device, **machine(device), **software()),
                  packages=packages(), form='tiny' if size is SIZES['tiny'] else 'cuda',
                  wall_s=time.perf_counter() - started, ok=all(r['ok'] for r in results.values()),
                  parts=results)
    write_json(osp.join(out, 'gpu_check.json'), report)
    write_text(osp.join(out, 'gpu_check.md'), markdown(report))
    return report


def packages() -> Dict[str, str]:
    """Where the stack was imported from (the carried form's scratch folder, or a venv), and
    which ``mmcv._ext``: fmkt's provider (mmcv-lite) or a compiled module."""
    import importlib
    out = {name: osp.dirname(importlib.import_module(name).__file__)
           for name in ('mmengine', 'mmcv', 'mmdet', 'mmpretrain', 'mmrazor', 'fmkt_plugin')}
    out['mmcv._ext'] = importlib.import_module('mmcv._ext').__file__
    return out


def markdown(report: dict) -> str:
    """The report as a markdown page."""
    m = report['machine']
    where = m.get('gpu') or f'{m["cpu"]} CPU ({m["simd"]})'
    lines = [f'# GPU check ({report["form"]} form) on {where}', '',
             f'torch {m["torch"]} (CUDA {m["cuda"]}), wall time {report["wall_s"]:.0f} s, '
             f'{"all parts passed" if report["ok"] else "SOME PARTS FAILED"}.', '']
    skip = ('ok', 'seconds', 'note', 'tables', 'traceback', 'losses', 'first_eta')
    lines += table(['part', 'result', 'seconds', 'details'], [
        [name, 'passed' if r['ok'] else 'FAILED', f'{r["seconds"]:.0f}',
         r.get('error') or r.get('note') or ', '.join(f'{k} {v}' for k, v in r.items()
                                                      if k not in skip)]
        for name, r in report['parts'].items()])
    tables = report['parts'].get('overhead', {}).get('tables', [])
    if tables:
        keys = list(tables[0]['ratios'])
        lines += ['', '## Overhead ratios (time / KD, or / plain ResNet-18 for inference)', '']
        lines += table(['precision', 'flow compiled'] + keys, [
            [t['precision'], 'yes' if t['compiled'] else 'no']
            + [f'{t["ratios"][k]:.3f}' for k in keys] for t in tables])
    return '\n'.join(lines) + '\n'


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__)
    parser.add_argument('--out', default=osp.join('benchmark_results', 'gpu-check'))
    parser.add_argument('--tiny', action='store_true',
                        help='the tiny form (the default on a machine without CUDA)')
    parser.add_argument('--parts', nargs='+', choices=list(PARTS), default=None)
    args = parser.parse_args(argv)
    report = run_check(args.out, args.tiny, args.parts)
    print(markdown(report))
    print(f'[gpu-check] wrote {args.out}/gpu_check.json and gpu_check.md in '
          f'{report["wall_s"]:.0f} s', flush=True)
    return report


if __name__ == '__main__':
    sys.exit(0 if main()['ok'] else 1)
