"""Each fix in fmkt_plugin.compat: it is needed (fails without) and it works (passes with)."""
import os
import os.path as osp
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

from fmkt_plugin import compat
from fmkt_plugin.compat import mmcv_fixes


def _run(code: str) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    env['PYTHONPATH'] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] + sys.path)
    return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], env=env,
                          capture_output=True, text=True, timeout=300)


def test_fixes_are_applied_on_import():
    assert set(compat.applied_fixes()) == {
        'mmrazor-quantization-import', 'mmengine-checkpoint-weights-only',
        'mmengine-atomic-checkpoint-write', 'mmengine-ddp-on-cpu',
        'mmengine-remote-checkpoint-weights-only', 'mmengine-slurm-on-cpu',
        'mmengine-checkpoint-hook-save-before-delete', 'mmengine-local-checkpoint-refusal',
        'mmengine-fmkt-plugin-base-configs', 'mmengine-same-second-runners',
        'mmrazor-strict-teacher-load', 'mmrazor-module-inplace-false',
        'mmengine-mmcls-configs', 'mmrazor-datafree-single-process'} | (
            {'mmcv-lite-ext'} if mmcv_fixes.mmcv_is_lite() else
            set() if mmcv_fixes.mmcv_has_cuda_kernels() else {'mmcv-ops-cuda-route'})


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


def test_refused_local_checkpoint_is_named_with_the_fix(tmp_path):
    """Without the fix mmengine's local loader raises torch's refusal: no file name, advice to
    load with weights_only=False. With it: the file and what was refused, and no advice."""
    from mmengine.runner.checkpoint import _load_checkpoint

    from fmkt_plugin.utils.checkpoint_refusal import CheckpointRefused
    path = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'payload': _Exploit()}, path)
    plain = _run(f'''
        from mmengine.runner.checkpoint import _load_checkpoint
        _load_checkpoint({str(path)!r}, map_location='cpu')
    ''')
    assert plain.returncode != 0, plain.stderr[-2000:]
    error = plain.stderr[plain.stderr.rindex('_pickle.UnpicklingError'):]  # torch's message
    assert 'evil.pth' not in error and 'weights_only` set to `False`' in error, error
    with pytest.raises(CheckpointRefused) as info:
        _load_checkpoint(str(path), map_location='cpu')
    text = str(info.value)
    assert text.startswith(f'cannot load {path}: refused by the restricted unpickler (the '
                           'global posix.system, whose module posix is blocked)'), text
    assert 'weights_only' not in text
    assert info.value.__suppress_context__  # torch's text is not shown under it either


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
    assert applied == compat.mmpretrain_fixes.transformers_import_broken()


# ---------------------------------------------------------------------------------------------
# Fix 5: checkpoints given by URL (or found in the hub cache) load with weights_only=True.
# A hostile checkpoint is served from a loopback HTTP server (127.0.0.1 only, a bounded number
# of requests, shut down after a time limit); every loader must refuse it without running its
# payload, and a positive control shows that the same bytes do run it with weights_only=False.
# ---------------------------------------------------------------------------------------------
class _Payload:
    """Unpickling this runs code: it creates the marker file."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self):
        return (exec, (f'open({self.marker!r}, "w").close()', ))


def _hostile_bytes(marker) -> bytes:
    import io
    buf = io.BytesIO()
    torch.save({'state_dict': {'weight': torch.zeros(2, 2)}, 'meta': {'epoch': 1, 'iter': 1},
                'payload': _Payload(str(marker))}, buf)
    return buf.getvalue()


class _LoopbackServer:
    """Serves ``files`` (name -> bytes) on 127.0.0.1; counts requests, refuses past a limit."""

    def __init__(self, files: dict, max_requests: int = 6, lifetime_s: float = 120.0) -> None:
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                server.requests += 1
                body = files.get(self.path.lstrip('/'))
                if body is None or server.requests > max_requests:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header('Content-Length', str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f'http://127.0.0.1:{self.httpd.server_address[1]}'
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05, ),
                                       daemon=True)
        self.timer = threading.Timer(lifetime_s, self.httpd.shutdown)
        self.timer.daemon = True

    def __enter__(self):
        self.thread.start()
        self.timer.start()
        return self

    def __exit__(self, *exc):
        self.timer.cancel()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(5)


@pytest.fixture
def hostile(tmp_path, monkeypatch):
    """(server, url, marker): a hostile checkpoint at ``url``; the hub cache under tmp_path."""
    for var in ('http_proxy', 'https_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'all_proxy',
                'ALL_PROXY'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('no_proxy', '127.0.0.1')
    monkeypatch.setenv('NO_PROXY', '127.0.0.1')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)  # get_dir() follows TORCH_HOME
    assert torch.hub.get_dir().startswith(str(tmp_path))
    marker = tmp_path / 'payload_ran'
    with _LoopbackServer({'evil.pth': _hostile_bytes(marker)}) as server:
        yield server, f'{server.url}/evil.pth', marker


def _payload_runs_without_weights_only(url: str, marker) -> None:
    """Positive control: the same file (downloaded or cached) runs its payload when unguarded."""
    assert not marker.exists()
    torch.hub.load_state_dict_from_url(url, weights_only=False, progress=False)
    assert marker.exists(), 'the hostile file did not run its payload: the test proves nothing'


def _tiny_config(tmp_path) -> str:
    """The smallest runner config: a one-layer model, a test split that is never read."""
    path = tmp_path / 'tiny.py'
    path.write_text(textwrap.dedent('''
        model = dict(type='mmpretrain.ImageClassifier',
                     backbone=dict(type='mmpretrain.LeNet5', num_classes=2))
        test_dataloader = dict(batch_size=1, dataset=dict(type='mmpretrain.CustomDataset',
                               data_root='never_read', pipeline=[]),
                               sampler=dict(type='DefaultSampler', shuffle=False))
        test_cfg = dict()
        test_evaluator = dict(type='mmpretrain.Accuracy')
        default_scope = 'mmpretrain'
        '''))
    return str(path)


def test_hostile_teacher_ckpt_url_is_refused(hostile):
    from fmkt_plugin.models.algorithms.checks import load_teacher_checkpoint
    server, url, marker = hostile
    with pytest.raises(RuntimeError, match='teacher_ckpt: cannot load .*evil.pth'):
        load_teacher_checkpoint(torch.nn.Linear(2, 2), url)
    assert server.requests == 1 and not marker.exists()
    _payload_runs_without_weights_only(url, marker)


def test_hostile_file_in_hub_cache_for_a_shipped_teacher_url_is_refused(hostile, tmp_path):
    """A shipped config's teacher URL, with a poisoned file in the hub cache (no download)."""
    from helpers import config_path

    from fmkt_plugin.apis import load_config
    from fmkt_plugin.models.algorithms.checks import load_teacher_checkpoint
    _, _, marker = hostile
    url = load_config(config_path('fmkt/resnet34_res18_in1k.py')).model.teacher_ckpt
    assert url.startswith('https://')
    cache = os.path.join(torch.hub.get_dir(), 'checkpoints', os.path.basename(url))
    os.makedirs(os.path.dirname(cache))
    with open(cache, 'wb') as f:
        f.write(_hostile_bytes(marker))
    with pytest.raises(RuntimeError, match='teacher_ckpt: cannot load'):
        load_teacher_checkpoint(torch.nn.Linear(2, 2), url)
    assert not marker.exists()
    _payload_runs_without_weights_only(url, marker)  # served from the cache, no network


def test_hostile_load_from_url_is_refused(hostile, tmp_path):
    """``tools/train.py --cfg-options load_from=URL``."""
    from helpers import load_tool
    server, url, marker = hostile
    runner = load_tool('train').build_runner(
        [_tiny_config(tmp_path), '--work-dir', str(tmp_path / 'work'), '--cfg-options',
         f'load_from={url}'])
    with pytest.raises(pickle.UnpicklingError, match='evil.pth'):
        runner.load_or_resume()
    assert server.requests == 1 and not marker.exists()
    _payload_runs_without_weights_only(url, marker)


def test_hostile_resume_url_is_refused(hostile, tmp_path):
    """``--resume URL``, and ``--resume`` (auto) with the URL in ``last_checkpoint``."""
    from helpers import load_tool
    server, url, marker = hostile
    train, work = load_tool('train'), tmp_path / 'work'
    with pytest.raises(RuntimeError, match='--resume: cannot load .*evil.pth'):
        train.build_runner([_tiny_config(tmp_path), '--work-dir', str(work), '--resume', url])
    work.mkdir()
    (work / 'last_checkpoint').write_text(url)
    runner = train.build_runner([_tiny_config(tmp_path), '--work-dir', str(work), '--resume'])
    with pytest.raises(pickle.UnpicklingError, match='evil.pth'):
        runner.load_or_resume()
    assert server.requests >= 1 and not marker.exists()
    _payload_runs_without_weights_only(url, marker)


def test_hostile_pretrained_init_cfg_url_is_refused(hostile):
    from mmengine.model import BaseModule
    server, url, marker = hostile

    class Tiny(BaseModule):
        def __init__(self, init_cfg):
            super().__init__(init_cfg=init_cfg)
            self.fc = torch.nn.Linear(2, 2)

    model = Tiny(init_cfg=dict(type='Pretrained', checkpoint=url))
    with pytest.raises(pickle.UnpicklingError, match='evil.pth'):
        model.init_weights()
    assert server.requests == 1 and not marker.exists()
    _payload_runs_without_weights_only(url, marker)


def test_hostile_checkpoint_url_for_test_tool_is_refused(hostile, tmp_path):
    from helpers import load_tool
    server, url, marker = hostile
    with pytest.raises(RuntimeError, match='checkpoint: cannot load .*evil.pth'):
        load_tool('test').main([_tiny_config(tmp_path), url, '--work-dir', str(tmp_path / 'w')])
    assert server.requests == 1 and not marker.exists()
    _payload_runs_without_weights_only(url, marker)


def test_hostile_checkpoint_url_for_converter_is_refused(hostile, tmp_path):
    """The converter takes local files only: it refuses the URL before any download."""
    from helpers import config_path, load_tool
    server, url, marker = hostile
    with pytest.raises(FileNotFoundError, match='evil.pth'):
        load_tool('convert_fmkt_ckpt_to_student').main(
            [config_path('fmkt/resnet34_res18_in1k.py'), url, str(tmp_path / 'out')])
    assert server.requests == 0 and not marker.exists()
    _payload_runs_without_weights_only(url, marker)


def test_safe_load_url_refuses_an_explicit_weights_only_false(hostile):
    server, url, marker = hostile
    import mmengine.runner.checkpoint as mm_checkpoint
    with pytest.raises(ValueError, match='weights_only=True only'):
        mm_checkpoint.load_url(url, weights_only=False)
    assert server.requests == 0 and not marker.exists()


def test_remote_state_dict_still_loads(tmp_path, monkeypatch):
    """A plain checkpoint by URL loads as before (through the hub cache under tmp_path)."""
    import io

    from mmengine.runner.checkpoint import _load_checkpoint
    for var in ('http_proxy', 'HTTP_PROXY', 'all_proxy', 'ALL_PROXY'):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv('no_proxy', '127.0.0.1')
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch_home'))
    monkeypatch.setattr(torch.hub, '_hub_dir', None)
    buf = io.BytesIO()
    torch.save({'state_dict': {'w': torch.arange(3.)}}, buf)
    with _LoopbackServer({'ok.pth': buf.getvalue()}) as server:
        ckpt = _load_checkpoint(f'{server.url}/ok.pth', map_location='cpu')
    assert torch.equal(ckpt['state_dict']['w'], torch.arange(3.))


# Fix 6: --launcher slurm on a node without a GPU (one task, as srun starts it; no scontrol
# needed because MASTER_ADDR is set, as srun --export or the job script may do).
_SLURM_ON_CPU = """
{imports}
import torch.distributed as torch_dist
from mmengine.dist import init_dist
init_dist('slurm', backend='nccl')
print('ok', torch_dist.get_backend(), torch_dist.get_world_size(), torch_dist.get_rank())
"""


@pytest.mark.slow
def test_slurm_launcher_on_cpu_needs_fix():
    import socket
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
    env = dict(os.environ, CUDA_VISIBLE_DEVICES='', SLURM_PROCID='0', SLURM_NTASKS='1',
               SLURM_NODELIST='localhost', MASTER_ADDR='127.0.0.1', MASTER_PORT=str(port))
    env.pop('SLURM_LOCALID', None)
    env['PYTHONPATH'] = os.pathsep.join(
        [os.path.dirname(os.path.dirname(os.path.abspath(__file__)))] + sys.path)

    def run(plugin: bool) -> subprocess.CompletedProcess:
        code = _SLURM_ON_CPU.format(imports='import fmkt_plugin' if plugin else '')
        return subprocess.run([sys.executable, '-c', code], env=env, capture_output=True,
                              text=True, timeout=300)

    plain = run(plugin=False)
    assert plain.returncode != 0 and 'ZeroDivisionError' in plain.stderr, plain.stderr[-2000:]
    fixed = run(plugin=True)
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert fixed.stdout.strip().splitlines()[-1].split() == ['ok', 'gloo', '1', '0']


# Fix 7: CheckpointHook saves the new checkpoint before it deletes the outdated one, and
# replaces last_checkpoint atomically. A real mmengine Runner on a one-parameter model; the
# second epoch's save fails inside runner.save_checkpoint (a hook raising in
# before_save_checkpoint, as a crash or a full disk would).
def _checkpoint_hook_run(work_dir: str, fail_at_epoch=None, hooks=(), max_epochs=3,
                         resume=False):
    from mmengine.hooks import Hook
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class OneWeight(BaseModel):
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))

        def forward(self, inputs, data_samples=None, mode='tensor'):
            out = (self.w * torch.stack(inputs)).sum()
            return {'loss': out} if mode == 'loss' else out

    class FailingSave(Hook):
        def before_save_checkpoint(self, runner, checkpoint):
            if checkpoint['meta']['epoch'] == fail_at_epoch:
                raise OSError('disk full (simulated inside save_checkpoint)')

    loader = torch.utils.data.DataLoader([torch.ones(1)] * 2, batch_size=1,
                                         collate_fn=lambda b: dict(inputs=b))
    runner = Runner(
        model=OneWeight(), work_dir=work_dir, train_dataloader=loader,
        train_cfg=dict(by_epoch=True, max_epochs=max_epochs), resume=resume,
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.1)),
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=1,
                                           max_keep_ckpts=1)),
        custom_hooks=[FailingSave(), *hooks], default_scope='mmengine')
    if fail_at_epoch is None:
        runner.train()
        return runner
    else:
        with pytest.raises(OSError, match='disk full'):
            runner.train()


def test_checkpoint_hook_keeps_the_last_checkpoint_when_a_save_fails(tmp_path):
    work = tmp_path / 'work'
    _checkpoint_hook_run(str(work), fail_at_epoch=3)  # epochs 1, 2 saved, 3 fails
    kept = sorted(p.name for p in work.iterdir() if p.suffix == '.pth')
    assert kept == ['epoch_2.pth']  # upstream deleted it before the failed save: []
    last = (work / 'last_checkpoint').read_text()
    assert last == 'epoch_2.pth'  # relative to the work dir: a moved work dir still resumes
    assert torch.load(work / last, map_location='cpu')['meta']['epoch'] == 2


def test_a_moved_work_dir_resumes_from_its_own_last_checkpoint(tmp_path):
    """Upstream wrote the absolute path into last_checkpoint: a work dir moved elsewhere resumed
    from the old place, or found nothing there."""
    import shutil

    import mmengine.runner.runner as mm_runner
    first, moved = tmp_path / 'first', tmp_path / 'moved'
    _checkpoint_hook_run(str(first))  # 3 epochs
    shutil.move(str(first), str(moved))
    assert mm_runner.find_latest_checkpoint(str(moved)) == str(moved / 'epoch_3.pth')
    runner = _checkpoint_hook_run(str(moved), max_epochs=4, resume=True)
    assert (runner.epoch, runner.iter) == (4, 8)  # resumed at epoch 3 (iter 6): one more epoch
    assert (moved / 'last_checkpoint').read_text() == 'epoch_4.pth'


def test_checkpoint_hook_replaces_last_checkpoint_atomically(tmp_path):
    """An in-place write keeps the file's inode; an atomic replace gives a new one each save."""
    from mmengine.hooks import Hook
    work = tmp_path / 'work'
    inodes = []

    class Inode(Hook):
        priority = 'LOWEST'  # after CheckpointHook's after_train_epoch

        def after_train_epoch(self, runner):
            inodes.append(os.stat(work / 'last_checkpoint').st_ino)

    _checkpoint_hook_run(str(work), hooks=[Inode()])
    assert len(inodes) == 3 and all(a != b for a, b in zip(inodes, inodes[1:])), inodes
    assert sorted(p.name for p in work.iterdir() if p.suffix == '.pth') == ['epoch_3.pth']
    assert not [p for p in work.iterdir() if '.tmp-' in p.name]


_CHILD_OF_PACKAGED_CONFIG = ("_base_ = ['fmkt_plugin::fmkt/resnet34_res18_in1k.py']\n"
                             "model = dict(allow_random_teacher=True, teacher_ckpt=None)\n")


def test_fmkt_plugin_base_configs_need_fix(tmp_path):
    """Without the fix mmengine refuses the ``fmkt_plugin::`` scope; with it the config loads."""
    child = tmp_path / 'child.py'
    child.write_text(_CHILD_OF_PACKAGED_CONFIG)
    plain = _run(f'''
        from mmengine.config import Config
        Config.fromfile({str(child)!r})
    ''')
    assert plain.returncode != 0, 'fmkt_plugin:: loads without the fix: it may be obsolete'
    assert 'does not support to load fmkt_plugin config' in plain.stderr, plain.stderr[-2000:]
    fixed = _run(f'''
        import fmkt_plugin
        from mmengine.config import Config
        cfg = Config.fromfile({str(child)!r})
        print(cfg.model.type, cfg.model.architecture.head.type)
    ''')
    assert fixed.returncode == 0, fixed.stderr[-3000:]
    assert fixed.stdout.split()[-2:] == ['FMKTDistill', 'FlowMatchingClsHead']


def test_installed_path_of_fmkt_plugin_is_the_imported_package():
    """Upstream answers ``<distribution location>/fmkt_plugin``, which an editable install does
    not have; the fix answers the imported package's folder, and leaves other packages alone."""
    import os.path as osp

    import mmengine.config.config as mm_config
    import mmengine.config.utils as mm_config_utils

    import fmkt_plugin

    fixed = mm_config.get_installed_path
    assert getattr(fixed, '__fmkt_fix__', False)
    assert mm_config_utils.MODULE2PACKAGE['fmkt_plugin'] == 'fmkt_plugin'
    package_dir = osp.dirname(fmkt_plugin.__file__)
    assert osp.realpath(fixed('fmkt_plugin')) == osp.realpath(package_dir)
    assert fixed('mmengine') == fixed.__wrapped__('mmengine')
    upstream = fixed.__wrapped__('fmkt_plugin')
    if osp.isdir(upstream):
        pytest.skip(f'fmkt_plugin is not an editable install here ({upstream} exists)')
    assert osp.realpath(upstream) != osp.realpath(package_dir)


def test_fmkt_plugin_base_configs_of_an_editable_install_need_the_path_fix(tmp_path):
    """Registering the scope alone is not enough for an editable install: upstream looks for
    ``.mim`` in ``<site-packages>/fmkt_plugin``, which does not exist."""
    from mmengine.utils import get_installed_path  # upstream's: the fix wraps mmengine.config's
    upstream = get_installed_path('fmkt_plugin')
    if os.path.isdir(upstream):
        pytest.skip(f'fmkt_plugin is not an editable install here ({upstream} exists)')
    child = tmp_path / 'child.py'
    child.write_text(_CHILD_OF_PACKAGED_CONFIG)
    scope_only = _run(f'''
        from mmengine.config import Config
        from mmengine.config.utils import MODULE2PACKAGE
        MODULE2PACKAGE['fmkt_plugin'] = 'fmkt_plugin'
        Config.fromfile({str(child)!r})
    ''')
    assert scope_only.returncode != 0, 'the editable install is found without the path fix'
    assert 'FileNotFoundError' in scope_only.stderr, scope_only.stderr[-2000:]


# ---------------------------------------------------------------------------------------------
# Fix 11: two runners started in the same second in one process
# ---------------------------------------------------------------------------------------------
_SAME_SECOND = '''
    import json, os, tempfile, time
    {prelude}
    import torch
    from mmengine.model import BaseModel
    from mmengine.runner import Runner

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(1, 1)

        def forward(self, inputs=None, data_samples=None, mode='tensor'):
            return self.fc(inputs)

    time.time = lambda: 1.75e9  # both runners start within the same second
    root = tempfile.mkdtemp()
    first, second = (Runner(model=Toy(), work_dir=os.path.join(root, name)) for name in 'ab')
    log_files = [h.baseFilename for h in second.logger.handlers if hasattr(h, 'baseFilename')]
    vis_dir = second.visualizer._vis_backends['LocalVisBackend']._save_dir
    print(json.dumps(dict(
        names=[first.experiment_name, second.experiment_name],
        shared=[first.logger is second.logger, first.message_hub is second.message_hub,
                first.visualizer is second.visualizer],
        second_writes_under_its_work_dir=all(
            p.startswith(os.path.join(root, 'b') + os.sep) for p in log_files + [vis_dir]))))
'''


def _same_second(prelude: str) -> dict:
    import json
    out = _run(_SAME_SECOND.format(prelude=prelude))
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_runners_of_the_same_second_share_their_log_without_fix():
    plain = _same_second('')
    assert plain['shared'] == [True, True, True], 'upstream names runners apart: fix obsolete?'
    assert not plain['second_writes_under_its_work_dir']


def test_runners_of_the_same_second_log_apart_with_fix():
    fixed = _same_second('import fmkt_plugin')
    assert fixed['shared'] == [False, False, False]
    assert fixed['second_writes_under_its_work_dir']
    first, second = fixed['names']
    assert second == first + '_2'  # the first runner keeps mmengine's name


def test_every_fix_names_its_versions_and_a_test_that_exists():
    """Each fix's docstring says which upstream versions it is for and which test fails without
    it; the named tests exist (a renamed test would leave the docstring pointing nowhere)."""
    import ast
    import re

    from helpers import REPO
    assert len(compat.FIXES) == len({name for name, _ in compat.FIXES}) == 17
    for name, fix in compat.FIXES:
        doc = fix.__doc__ or ''
        assert re.match(r'Fix \d+b?: ', doc), name
        assert 'Versions: ' in doc, name
        named = re.findall(r'Fails without it \((tests/\w+\.py)\):\n((?:\s+test_\w+\n)+)', doc)
        assert named, name
        for path, tests in named:
            with open(osp.join(REPO, path)) as f:
                defined = {n.name for n in ast.walk(ast.parse(f.read()))
                           if isinstance(n, ast.FunctionDef)}
            for test in tests.split():
                assert test in defined, f'{name}: {path} has no {test}'
    with open(compat.__file__) as f:
        assert len(f.read().splitlines()) < 80


# --------------------------------------------------------------------------------------------
# Fix 14: mmrazor's algorithms switch in-place modules off, so a recorder keeps its tensor
# --------------------------------------------------------------------------------------------
class _BnReLU(torch.nn.Module):
    """conv -> BN -> ReLU(inplace=True): a recorder on the BN sees its output overwritten by
    the ReLU unless the algorithm switched the ReLU to out-of-place."""

    def __init__(self):
        super().__init__()
        self.block = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4),
                                         torch.nn.ReLU(inplace=True))

    def forward(self, x):
        return self.block(x)


def _recorded_bn_output(fixed: bool):
    from mmengine.model import BaseModel
    from mmrazor.models.algorithms.base import BaseAlgorithm
    from mmrazor.models.task_modules import ModuleOutputsRecorder

    class Toy(BaseModel):
        def __init__(self):
            super().__init__()
            self.net = _BnReLU()

        def forward(self, inputs, data_samples=None, mode='tensor'):
            return self.net(inputs)

    model = Toy()
    if fixed:
        BaseAlgorithm(model)
    else:  # upstream's walk, as mmrazor 1.0.0 ships it
        import types

        from mmrazor.models.algorithms import base as upstream_module
        walk = upstream_set_module_inplace_false(upstream_module)
        holder = types.SimpleNamespace()
        holder.set_module_inplace_false = lambda arch, varstr: walk(holder, arch, varstr)
        walk(holder, model, 'architecture')
    recorder = ModuleOutputsRecorder('net.block.1')
    recorder.initialize(model)
    x = torch.randn(2, 3, 4, 4)
    with recorder:
        model(x)
    return recorder.data_buffer[0], model.net.block[1](model.net.block[0](x)), model


def upstream_set_module_inplace_false(module):
    """mmrazor 1.0.0's own ``set_module_inplace_false``, compiled from its installed source
    file (the class attribute holds the fix)."""
    import ast
    tree = ast.parse(open(module.__file__).read())
    (fn, ) = [f for c in tree.body if isinstance(c, ast.ClassDef) and c.name == 'BaseAlgorithm'
              for f in c.body
              if isinstance(f, ast.FunctionDef) and f.name == 'set_module_inplace_false']
    scope = dict(vars(module))
    exec(compile(ast.Module(body=[fn], type_ignores=[]), module.__file__, 'exec'), scope)
    return scope[fn.name]


def test_mmrazor_recorder_keeps_the_tensor_its_module_returned():
    """mmrazor's walk stops at ``_modules`` (a dict, not an OrderedDict, on torch >= 2): the
    ReLU stays in place and the recorded BN output has lost its negative values."""
    recorded, expected, model = _recorded_bn_output(fixed=False)
    assert model.net.block[2].inplace is True
    assert (expected < 0).any() and not (recorded < 0).any()  # overwritten by the ReLU
    recorded, expected, model = _recorded_bn_output(fixed=True)
    assert model.net.block[2].inplace is False
    torch.testing.assert_close(recorded, expected)


def test_mmrazor_kd_config_loads_without_mmcls():
    """MMRazor 1.0.0's KD config inherits ``mmcls::`` bases and builds from ``cfg_path=
    'mmcls::...'``; without the fix mmengine says mmcls is not installed."""
    code = '''
        import sys
        if len(sys.argv) > 1:
            import fmkt_plugin
        from mmengine.hub import get_config
        cfg = get_config('mmrazor::distill/mmcls/kd/kd_logits_resnet34_resnet18_8xb32_in1k.py')
        print(cfg.model.architecture.cfg_path, cfg.default_scope)
    '''
    plain = subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True,
                           text=True, timeout=300)
    assert plain.returncode != 0 and 'mmcls' in plain.stderr, plain.stderr[-2000:]
    fixed = subprocess.run([sys.executable, '-c', textwrap.dedent(code), 'fixed'],
                           capture_output=True, text=True, timeout=300)
    assert fixed.returncode == 0, fixed.stderr[-2000:]
    assert fixed.stdout.split()[-2:] == ['mmpretrain::resnet/resnet18_8xb32_in1k.py',
                                         'mmpretrain']
