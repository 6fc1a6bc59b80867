"""Each fix in fmkt_plugin.compat: it is needed (fails without) and it works (passes with)."""
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

from fmkt_plugin import compat


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] + sys.path)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_fixes_are_applied_on_import():
    assert set(compat.applied_fixes()) == {
        'mmrazor-quantization-import', 'mmengine-checkpoint-weights-only',
        'mmengine-atomic-checkpoint-write', 'mmengine-ddp-on-cpu'}


def test_mmrazor_models_import_fails_without_fix_and_works_with_it():
    plain = _run('import mmrazor.models')
    assert plain.returncode != 0, 'mmrazor imports without the fix: the stand-in may be obsolete'
    fixed = _run('''
        import fmkt_plugin, mmrazor.models
        from mmrazor.registry import MODELS
        from mmrazor.utils import register_all_modules
        register_all_modules()
        for name in ('SingleTeacherDistill', 'FpnTeacherDistill', 'ConfigurableDistiller',
                     'KLDivergence', 'DKDLoss', 'DISTLoss', 'PKDLoss'):
            assert MODELS.get(name) is not None, name
        print('ok')
    ''')
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert fixed.stdout.strip().endswith('ok')


def test_quantization_stand_in_fails_loudly():
    from mmrazor.structures.quantization import QConfigHandler
    with pytest.raises(RuntimeError, match='mmrazor#632'):
        QConfigHandler(dict())


@pytest.fixture()
def mmengine_checkpoint(tmp_path):
    """A checkpoint as mmengine's runner writes it, with message_hub state."""
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint
    hub = MessageHub.get_instance('fmkt_compat_test')
    for i in range(3):
        hub.update_scalar('train/loss', 1.0 / (i + 1))
    hub.update_info('iter', 3)
    model = torch.nn.Linear(2, 2)
    path = str(tmp_path / 'iter_3.pth')
    save_checkpoint({'state_dict': model.state_dict(), 'message_hub': hub.state_dict(),
                     'meta': {'epoch': 1, 'iter': 3, 'seed': 0}}, path)
    return path


def test_mmengine_resume_checkpoint_needs_fix(mmengine_checkpoint):
    plain = _run(f'''
        from mmengine.runner.checkpoint import _load_checkpoint
        _load_checkpoint({mmengine_checkpoint!r}, map_location='cpu')
    ''')
    assert plain.returncode != 0 and 'Unpickl' in plain.stderr, plain.stderr[-2000:]
    fixed = _run(f'''
        import fmkt_plugin
        from mmengine.runner.checkpoint import _load_checkpoint
        ckpt = _load_checkpoint({mmengine_checkpoint!r}, map_location='cpu')
        assert ckpt['message_hub']['log_scalars']['train/loss'].current() == 1 / 3
        print('ok')
    ''')
    assert fixed.returncode == 0, fixed.stderr[-3000:]


class _Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))


def test_code_executing_checkpoint_is_still_rejected(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = tmp_path / 'evil.pth'
    with open(path, 'wb') as f:
        torch.save({'state_dict': {}, 'payload': _Exploit()}, f)
    with pytest.raises(pickle.UnpicklingError):
        _load_checkpoint(str(path), map_location='cpu')


class _GetattrExploit:
    """Reaches os.system through getattr on an allowed class: must not load."""

    def __reduce__(self):
        from mmengine.logging import HistoryBuffer
        return (getattr, (HistoryBuffer, '__init__'))


def test_restricted_getattr_refuses_other_attributes(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = tmp_path / 'getattr.pth'
    torch.save({'payload': _GetattrExploit()}, path)
    with pytest.raises(pickle.UnpicklingError, match='only mmengine HistoryBuffer'):
        _load_checkpoint(str(path), map_location='cpu')


# A process killed by the kernel in the middle of writing a checkpoint: the file-size limit
# makes the write stop after 64 KiB and SIGXFSZ (default action restored; Python ignores it)
# kills the process there, like a SIGKILL would.
_KILLED_SAVE = """
import resource, signal, sys
{imports}
import torch
from mmengine.runner.checkpoint import save_checkpoint
if len(sys.argv) > 2:  # first a complete checkpoint, under the limit
    save_checkpoint({{'state_dict': {{'w': torch.ones(4)}}}}, sys.argv[1])
hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]
resource.setrlimit(resource.RLIMIT_FSIZE, (1 << 16, hard))
signal.signal(signal.SIGXFSZ, signal.SIG_DFL)
save_checkpoint({{'state_dict': {{'w': torch.zeros(1 << 20)}}}}, sys.argv[1])
"""


def _killed_save(path, plugin: bool, existing: bool) -> subprocess.CompletedProcess:
    code = _KILLED_SAVE.format(imports='import fmkt_plugin' if plugin else '')
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] + sys.path)
    argv = [sys.executable, '-c', code, str(path)] + (['existing'] if existing else [])
    return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)


def test_killed_checkpoint_write_leaves_truncated_file_without_fix(tmp_path):
    import signal
    path = tmp_path / 'epoch_2.pth'
    out = _killed_save(path, plugin=False, existing=True)
    assert out.returncode == -signal.SIGXFSZ, out.stderr[-2000:]
    assert 0 < path.stat().st_size <= 1 << 16  # the previous checkpoint is gone, a stub is left
    with pytest.raises(Exception):
        torch.load(path, map_location='cpu')


@pytest.mark.parametrize('existing', [False, True])
def test_killed_checkpoint_write_leaves_target_intact_with_fix(tmp_path, existing):
    import signal
    path = tmp_path / 'epoch_2.pth'
    out = _killed_save(path, plugin=True, existing=existing)
    assert out.returncode == -signal.SIGXFSZ, out.stderr[-2000:]
    if existing:
        assert torch.equal(torch.load(path, map_location='cpu')['state_dict']['w'],
                           torch.ones(4))
    else:
        assert not path.exists()
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != path.name]
    assert len(leftovers) == 1 and leftovers[0].startswith('.epoch_2.pth.tmp-')


def test_atomic_checkpoint_write_round_trip_and_failure_cleanup(tmp_path):
    from mmengine.fileio.backends import LocalBackend
    from mmengine.runner.checkpoint import save_checkpoint
    path = tmp_path / 'sub' / 'epoch_1.pth'
    save_checkpoint({'state_dict': {'w': torch.arange(3.)}}, str(path))
    save_checkpoint({'state_dict': {'w': torch.arange(5.)}}, str(path))  # overwrite
    assert torch.equal(torch.load(path)['state_dict']['w'], torch.arange(5.))
    assert os.listdir(path.parent) == ['epoch_1.pth']

    with pytest.raises(TypeError):  # a write that fails with an ordinary exception
        LocalBackend().put(object(), str(path))
    assert os.listdir(path.parent) == ['epoch_1.pth']
    assert torch.equal(torch.load(path)['state_dict']['w'], torch.arange(5.))


# One gloo process (world size 1) as torchrun starts it, with CUDA hidden: mmengine's own
# launcher code path, without the cost of a multi-process run (tests/test_distributed.py).
_DDP_ON_CPU = """
import sys
{imports}
import torch
import torch.distributed as torch_dist
from mmengine.dist import init_dist
from mmengine.model.wrappers import MMDistributedDataParallel
if sys.argv[1] == 'init':
    init_dist('pytorch', backend='nccl')  # mmpretrain's default_runtime asks for nccl
else:
    torch_dist.init_process_group(backend='gloo')
model = MMDistributedDataParallel(module=torch.nn.Linear(3, 1), device_ids=[0])
model(torch.ones(2, 3)).sum().backward()
print('ok', torch_dist.get_backend(), torch_dist.get_world_size())
"""


def _ddp_on_cpu(step: str, plugin: bool) -> subprocess.CompletedProcess:
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', RANK='0', LOCAL_RANK='0', WORLD_SIZE='1',
               MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    env['PYTHONPATH'] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] + sys.path)
    code = _DDP_ON_CPU.format(imports='import fmkt_plugin' if plugin else '')
    return subprocess.run([sys.executable, '-c', code, step], env=env, capture_output=True,
                          text=True, timeout=300)


def test_ddp_on_cpu_needs_fix():
    init = _ddp_on_cpu('init', plugin=False)
    assert init.returncode != 0 and 'set_device' in init.stderr, init.stderr[-2000:]
    wrap = _ddp_on_cpu('wrap', plugin=False)
    assert wrap.returncode != 0 and 'device_ids' in wrap.stderr, wrap.stderr[-2000:]
    for step in ('init', 'wrap'):
        fixed = _ddp_on_cpu(step, plugin=True)
        assert fixed.returncode == 0, fixed.stderr[-3000:]
        assert fixed.stdout.strip().splitlines()[-1].split() == ['ok', 'gloo', '1']
        assert ('instead of nccl' in fixed.stdout) == (step == 'init')


def _fake_transformers5(root) -> str:
    """A folder that makes a ``transformers`` 5 look installed (distribution metadata) whose
    import fails as mmpretrain meets it (transformers 5 dropped ``apply_chunking_to_forward``
    and more from ``modeling_utils``); nothing is installed."""
    import importlib.util
    pkg = root / 'transformers'
    pkg.mkdir()
    (pkg / '__init__.py').write_text(
        "raise ImportError(\"cannot import name 'apply_chunking_to_forward' from "
        "'transformers.modeling_utils' (simulated transformers 5)\")\n")
    dists = {'transformers': '5.0.0'}
    if importlib.util.find_spec('pycocotools') is None:  # mmpretrain also asks for it
        dists['pycocotools'] = '2.0.8'
    for name, version in dists.items():
        info = root / f'{name}-{version}.dist-info'
        info.mkdir()
        (info / 'METADATA').write_text(
            f'Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n')
    return str(root)


def _run_with_path(code: str, first: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [first, os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] + sys.path)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_mmpretrain_with_transformers5_needs_fix(tmp_path):
    fake = _fake_transformers5(tmp_path)
    plain = _run_with_path('import mmpretrain.models', fake)
    assert plain.returncode != 0, 'mmpretrain imports with transformers 5: fix may be obsolete'
    assert 'simulated transformers 5' in plain.stderr, plain.stderr[-2000:]
    fixed = _run_with_path('''
        import fmkt_plugin
        from fmkt_plugin import compat
        import mmpretrain.models
        from mmpretrain.registry import MODELS
        from mmpretrain.utils.dependency import WITH_MULTIMODAL
        assert 'mmpretrain-multimodal-transformers5' in compat.applied_fixes()
        assert WITH_MULTIMODAL is False
        assert MODELS.get('ImageClassifier') is not None
        try:
            MODELS.build(dict(type='BlipCaption'))
        except ImportError as err:
            assert 'multi-modal' in str(err), err
        else:
            raise AssertionError('the multimodal placeholder built')
        print('ok')
    ''', fake)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert fixed.stdout.strip().endswith('ok')


def test_mmpretrain_fix_applies_only_to_a_broken_transformers():
    # here: no transformers, or one mmpretrain can import (then nothing is changed)
    applied = 'mmpretrain-multimodal-transformers5' in compat.applied_fixes()
    assert applied == compat._transformers_import_broken()
