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
        'mmrazor-quantization-import', 'mmengine-checkpoint-weights-only'}


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
