"""What a results file records about where and how it was made: the machine (CPU model and SIMD
level, or the GPU: digits differ between machines), the software, the run's time and command,
and paths written relative to named roots (a published file names no folder of the machine)."""
import contextlib
import hashlib
import os
import os.path as osp
import platform
import sys
import time
from importlib import metadata
from typing import Dict, List, Optional

from .device import device_name

__all__ = ['cpu_model', 'simd_level', 'machine', 'cpu_text', 'machine_text', 'software',
           'file_sha256', 'run_facts', 'portable']

#: ``/proc/cpuinfo`` flags (x86) or features (Arm), widest first, and the SIMD level each names.
SIMD = (('avx512f', 'AVX-512'), ('avx2', 'AVX2'), ('avx', 'AVX'), ('sse4_2', 'SSE4.2'),
        ('sve', 'SVE'), ('asimd', 'NEON'))
#: environment variables that pin the kernels torch, MKL and oneDNN dispatch to (and so the
#: digits); a results file records those that are set.
NUMERICS_ENV = ('ATEN_CPU_CAPABILITY', 'MKL_CBWR', 'MKL_ENABLE_INSTRUCTIONS', 'ONEDNN_MAX_CPU_ISA',
                'DNNL_MAX_CPU_ISA')
#: packages whose versions a results file records (those installed).
PACKAGES = ('numpy', 'mmengine', 'mmcv', 'mmpretrain', 'mmdet', 'mmrazor')


def _cpuinfo(path: str = '/proc/cpuinfo') -> Dict[str, str]:
    """The first value of every ``key: value`` line (empty where there is no such file)."""
    info: Dict[str, str] = {}
    with contextlib.suppress(OSError), open(path) as f:
        for line in f:
            key, _, value = line.partition(':')
            info.setdefault(key.strip(), value.strip())
    return info


def cpu_model(info: Optional[Dict[str, str]] = None) -> str:
    """The CPU's model name (``/proc/cpuinfo``), else what :mod:`platform` knows."""
    info = _cpuinfo() if info is None else info
    return info.get('model name') or info.get('Model') or platform.processor() or \
        platform.machine()


def simd_level(info: Optional[Dict[str, str]] = None) -> str:
    """The widest vector instruction set of the CPU (``'AVX-512'``, ``'AVX2'``, ``'NEON'``, ...)
    from ``/proc/cpuinfo``, else the one torch dispatches to."""
    info = _cpuinfo() if info is None else info
    flags = set((info.get('flags') or info.get('Features') or '').split())
    for flag, name in SIMD:
        if flag in flags:
            return name
    import torch
    return f'{torch.backends.cpu.get_cpu_capability()} (torch)'


def machine(device: str = 'cpu') -> dict:
    """``dict(cpu, simd, torch_cpu, numerics_env, cores, arch, gpu)``: the CPU's model and widest
    SIMD level, the CPU capability torch's kernels dispatch to (lower than ``simd`` when
    ``ATEN_CPU_CAPABILITY`` caps it), the :data:`NUMERICS_ENV` variables set, and the GPU (None
    unless ``device`` is CUDA)."""
    import torch
    info = _cpuinfo()
    return dict(cpu=cpu_model(info), simd=simd_level(info),
                torch_cpu=torch.backends.cpu.get_cpu_capability(),
                numerics_env={k: os.environ[k] for k in NUMERICS_ENV if k in os.environ},
                cores=os.cpu_count() or 1, arch=platform.machine(),
                gpu=torch.cuda.get_device_name(0) if device == 'cuda' else None)


def cpu_text(where: dict) -> str:
    """A recorded CPU (:func:`machine`) as a results file names it: model and SIMD level, then
    torch's dispatch level and the numerics variables where they narrow the CPU's."""
    text = f'{where["cpu"]}, {where["simd"]}'
    torch_cpu = where.get('torch_cpu')
    if torch_cpu and torch_cpu.replace('512', '-512') != where['simd']:
        text += f' (torch kernels {torch_cpu})'
    env = where.get('numerics_env') or {}
    return text + ''.join(f', {k}={v}' for k, v in sorted(env.items()))


def machine_text(meta: dict) -> str:
    """The device of a results file's ``meta``, with its CPU (:func:`cpu_text`: float rounding,
    and so the digits, differ between CPUs) or the GPU."""
    where = meta.get('machine') or {}
    if where.get('gpu'):
        return f'{meta["device"]}, {where["gpu"]}'
    if not where.get('cpu'):
        return meta['device']
    return f'{meta["device"]}: {cpu_text(where)}'


def software() -> dict:
    """Versions of python, torch (and its CUDA) and the OpenMMLab packages installed."""
    import torch
    out = dict(python=platform.python_version(), torch=torch.__version__,
               cuda=torch.version.cuda)
    for name in PACKAGES:
        with contextlib.suppress(metadata.PackageNotFoundError):
            out[name] = metadata.version(name)
    return out


def file_sha256(path: str) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


def run_facts(device: str, started: float, module: str, argv: Optional[List[str]]) -> dict:
    """The provenance entries of a results file's ``meta``: ``dict(device, machine, software,
    torch, python, started, wall_time_s, command)`` of a run on ``device`` started at
    ``started`` (``time.time()``) as ``python -m <module> <argv>`` (None: this process's)."""
    soft = software()
    return dict(device=device_name(device), machine=machine(device), software=soft,
                torch=soft['torch'], python=soft['python'],
                started=time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(started)),
                wall_time_s=time.time() - started,
                command=' '.join([f'python -m {module}'] + list(sys.argv[1:] if argv is None
                                                                 else argv)))


def portable(obj, roots: Dict[str, str]):
    """``obj`` (nested dicts/lists) with every absolute path under one of ``roots`` (name ->
    folder) written as ``<name>/...``, and every such path inside a string of words too (a
    command line)."""
    if isinstance(obj, dict):
        return {k: portable(v, roots) for k, v in obj.items()}
    if isinstance(obj, list):
        return [portable(v, roots) for v in obj]
    if not isinstance(obj, str):
        return obj
    if ' ' in obj:
        return ' '.join(portable(word, roots) for word in obj.split(' '))
    if osp.isabs(obj):
        for name, root in roots.items():
            root = osp.abspath(root)
            if obj == root or obj.startswith(root + os.sep):
                return osp.normpath(osp.join(name, osp.relpath(obj, root)))
    return obj
