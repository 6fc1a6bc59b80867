"""Which mmcv build the bootstrap makes: CPU kernels only, or CPU and CUDA kernels for some archs.

Run with the virtual environment's Python (it imports torch). Reads ``FMKT_MMCV_CUDA``
(``auto`` | ``1`` | ``0``) and ``TORCH_CUDA_ARCH_LIST``; prints one line
``VARIANT CUDA_VERSION ARCHS`` (``CUDA_VERSION`` and ``ARCHS`` are ``none`` for a CPU build), or
exits 2 with a message that names the setting to change.

``VARIANT`` names the cached wheel's folder: the torch version, the CUDA version and the archs, so
that a wheel built for one combination is never installed for another.
"""
import os
import re
import sys

MODES = ('auto', '1', '0')


def _archs_of_visible_gpus(torch) -> str:
    if not torch.cuda.is_available():
        return ''
    caps = {torch.cuda.get_device_capability(i) for i in range(torch.cuda.device_count())}
    return ';'.join(f'{major}.{minor}' for major, minor in sorted(caps))


def arch_tag(archs: str) -> str:
    """``'8.0;9.0+PTX'`` -> ``'sm80-sm90+PTX'``: the archs as they go into a folder name."""
    parts = [a for a in re.split(r'[;\s,]+', archs.strip()) if a]
    tags = []
    for a in parts:
        m = re.fullmatch(r'(\d+)\.(\d+)([a-z]?)(\+PTX)?', a)
        if not m:
            raise ValueError(f'TORCH_CUDA_ARCH_LIST: cannot read arch {a!r} '
                             '(expected e.g. 9.0 or 8.6+PTX)')
        tags.append(f'sm{m[1]}{m[2]}{m[3]}{m[4] or ""}')
    return '-'.join(tags)


def plan(mode: str, torch_version: str, cuda_version, archs_given: str, archs_visible: str):
    """The build for a setting; raises ValueError with the setting to change."""
    if mode not in MODES:
        raise ValueError(f'FMKT_MMCV_CUDA={mode!r}: expected one of {", ".join(MODES)}')
    torch_tag = 'torch' + torch_version.split('+')[0]
    cuda_wanted = mode == '1' or (mode == 'auto' and cuda_version is not None
                                  and bool(archs_visible))
    if not cuda_wanted:
        return f'{torch_tag}-cpu', 'none', 'none'
    if cuda_version is None:
        raise ValueError(f'FMKT_MMCV_CUDA=1 needs a CUDA build of torch; torch {torch_version} '
                         'has no CUDA')
    archs = archs_given.strip() or archs_visible
    if not archs:
        raise ValueError('FMKT_MMCV_CUDA=1 and no GPU is visible: give the archs to build for in '
                         'TORCH_CUDA_ARCH_LIST (for example 9.0 for H100/H200)')
    tag = arch_tag(archs)
    cu_tag = 'cu' + cuda_version.replace('.', '')
    archs = ';'.join(re.split(r'[;\s,]+', archs.strip()))
    return f'{torch_tag}-{cu_tag}-{tag}', cuda_version, archs


def main() -> int:
    import torch
    mode = os.environ.get('FMKT_MMCV_CUDA', 'auto')
    try:
        visible = _archs_of_visible_gpus(torch) if mode != '0' else ''
        print(*plan(mode, torch.__version__, torch.version.cuda,
                    os.environ.get('TORCH_CUDA_ARCH_LIST', ''), visible))
    except ValueError as e:
        print(f'[bootstrap] {e}', file=sys.stderr)
        return 2
    return 0


if __name__ == '__main__':
    sys.exit(main())
