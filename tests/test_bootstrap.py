"""scripts/bootstrap.sh's mmcv plan (scripts/mmcv_plan.py): which kernels, for which archs,
cached under which name; bad settings named before anything is built."""
import os
import os.path as osp
import subprocess
import sys

import pytest
from helpers import REPO, load_script


def _plan_module():
    return load_script('mmcv_plan')


@pytest.mark.parametrize('mode, cuda, given, visible, expected', [
    ('auto', '13.0', '', '', ('torch2.14.1-cpu', 'none', 'none')),  # CPU machine: CPU kernels
    ('auto', None, '', '', ('torch2.14.1-cpu', 'none', 'none')),
    ('auto', '13.0', '', '9.0', ('torch2.14.1-cu130-sm90', '13.0', '9.0')),  # an H100 visible
    ('0', '13.0', '', '9.0', ('torch2.14.1-cpu', 'none', 'none')),
    ('1', '13.0', '9.0', '', ('torch2.14.1-cu130-sm90', '13.0', '9.0')),  # built on a CPU box
    ('1', '13.0', '8.0 9.0+PTX', '', ('torch2.14.1-cu130-sm80-sm90+PTX', '13.0',
                                       '8.0;9.0+PTX')),
])
def test_plan_picks_the_kernels_and_names_the_cached_wheel(mode, cuda, given, visible,
                                                           expected):
    assert _plan_module().plan(mode, '2.14.1+cu130', cuda, given, visible) == expected


@pytest.mark.parametrize('mode, cuda, given, match', [
    ('yes', '13.0', '', "FMKT_MMCV_CUDA='yes': expected one of auto, 1, 0"),
    ('1', None, '9.0', 'FMKT_MMCV_CUDA=1 needs a CUDA build of torch'),
    ('1', '13.0', '', 'no GPU is visible: give the archs .* in TORCH_CUDA_ARCH_LIST'),
    ('1', '13.0', 'sm_90', "TORCH_CUDA_ARCH_LIST: cannot read arch 'sm_90'"),
])
def test_plan_names_the_bad_setting(mode, cuda, given, match):
    with pytest.raises(ValueError, match=match):
        _plan_module().plan(mode, '2.14.1', cuda, given, '')


def test_plan_script_exits_2_with_the_message():
    env = dict(os.environ, FMKT_MMCV_CUDA='1', TORCH_CUDA_ARCH_LIST='',
               CUDA_VISIBLE_DEVICES='')
    out = subprocess.run([sys.executable, osp.join(REPO, 'scripts', 'mmcv_plan.py')], env=env,
                         capture_output=True, text=True)
    assert out.returncode == 2 and 'TORCH_CUDA_ARCH_LIST' in out.stderr


def test_bootstrap_builds_each_variant_apart_from_pips_wheel_cache():
    text = open(osp.join(REPO, 'scripts', 'bootstrap.sh')).read()
    assert 'pip wheel --no-cache-dir' in text  # else pip returns another variant's wheel
    assert '"$WHEELS/$MMCV_VARIANT"' in text
    assert subprocess.run(['bash', '-n', osp.join(REPO, 'scripts', 'bootstrap.sh')]).returncode == 0


#: module names of requirements whose distribution name differs
_MODULE_OF = {'openmim': 'mim'}


def test_bootstrap_installs_again_when_a_test_requirement_is_missing():
    """Step 5 reinstalls the requirements when one of its imports fails: it imports one module of
    each package of requirements/tests.txt, so a venv made before a package was added gets it."""
    import re
    text = open(osp.join(REPO, 'scripts', 'bootstrap.sh')).read()
    line = next(line for line in text.splitlines()
                if 'import mmpretrain' in line and line.startswith('if !'))
    checked = set(re.search(r'import ([\w, ]+)"', line).group(1).replace(' ', '').split(','))
    with open(osp.join(REPO, 'requirements', 'tests.txt')) as f:
        names = [re.split(r'[<>=!~\[; ]', req, maxsplit=1)[0]
                 for req in (line.split('#')[0].strip() for line in f) if req]
    modules = {_MODULE_OF.get(name, name.replace('-', '_')) for name in names}
    assert modules <= checked, f'not checked by bootstrap step 5: {sorted(modules - checked)}'


@pytest.mark.slow
def test_default_bootstrap_needs_no_compiler(tmp_path):
    """The default path (mmcv-lite) compiles nothing: with CC/CXX failing and no nvcc on PATH,
    the bootstrap of this test's venv succeeds, and its import check (mmdet first, in an
    interpreter that never imports the plugin) passes."""
    import shutil
    bindir = tmp_path / 'bin'
    bindir.mkdir()
    for tool in ('bash', 'cat', 'dirname', 'grep', 'mktemp', 'rm', 'tail', 'id', 'ls', 'head'):
        found = shutil.which(tool)
        if found:
            (bindir / tool).symlink_to(found)
    env = dict(os.environ, CC='false', CXX='false', FMKT_SKIP_APT='1', FMKT_VENV=sys.prefix,
               PATH=str(bindir))
    env.pop('FMKT_MMCV', None)
    out = subprocess.run(['bash', osp.join(REPO, 'scripts', 'bootstrap.sh')], env=env,
                         capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    assert 'building mmcv' not in out.stderr and '[bootstrap] ready' in out.stderr


@pytest.mark.slow
def test_fashion_mnist_without_root_lands_where_the_benchmarks_look(tmp_path):
    """scripts/fetch_fmnist.sh (the bootstrap's step on a machine without root): apt-get download
    and dpkg -x, no root needed, into ~/.cache/fmkt/fashion-mnist; a second run finds them."""
    from benchmarks.common import fmnist
    env = dict(os.environ, HOME=str(tmp_path))
    script = osp.join(REPO, 'scripts', 'fetch_fmnist.sh')
    first = subprocess.run(['bash', script], env=env, capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr[-2000:]
    dest = tmp_path / '.cache' / 'fmkt' / 'fashion-mnist'
    names = sorted(p.name for p in dest.iterdir())
    assert names == sorted(f'{n}.gz' for n in fmnist.IDX_BYTES)
    for name in names:
        packaged = osp.join(fmnist.DEB_DIR, name)
        if osp.isfile(packaged):
            with open(packaged, 'rb') as a, open(dest / name, 'rb') as b:
                assert a.read() == b.read(), name
    again = subprocess.run(['bash', script], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and 'already in' in again.stdout
    # the benchmarks read that folder when the package's is missing and FMKT_FMNIST_DIR unset
    code = ('import sys; sys.path.insert(0, sys.argv[1]); from benchmarks.common import fmnist; '
            'fmnist.DEB_DIR = "/nonexistent"; '
            'print(fmnist.USER_DIR)')
    env.pop('FMKT_FMNIST_DIR', None)
    out = subprocess.run([sys.executable, '-c', code, REPO], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.stdout.strip() == str(dest), out.stderr[-2000:]
