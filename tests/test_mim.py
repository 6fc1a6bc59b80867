"""OpenMMLab packaging: the model index and metafiles against the config files, the configs'
README tables, the ``.mim`` folder setup.py writes, ``mim train`` on a packaged config, and
configs that inherit ``fmkt_plugin::`` paths."""
import glob
import importlib.util
import os
import os.path as osp
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
import yaml
from helpers import assert_log_trained_stably

REPO = osp.dirname(osp.dirname(osp.abspath(__file__)))
#: config folders with configs of their own (``_base_`` holds parts, not models)
CONFIG_DIRS = sorted(
    d for d in os.listdir(osp.join(REPO, 'configs'))
    if d != '_base_' and glob.glob(osp.join(REPO, 'configs', d, '*.py')))
MODEL_KEYS = ('Name', 'In Collection', 'Metadata', 'Results', 'Config', 'Weights')
#: what setup.py copies into the package's .mim folder
MIM_FILES = ('configs', 'tools', 'model-index.yml')
#: what a build needs from the repository (a copy is built, so the working tree stays clean)
BUILD_INPUTS = ('setup.py', 'MANIFEST.in', 'README.md', 'LICENSE', 'model-index.yml',
                'requirements', 'fmkt_plugin', 'configs', 'tools', 'fmkt_mmcv_ext_hook.py',
                'fmkt_mmcv_ext_hook.pth')


def _yaml(path):
    with open(path) as f:
        return yaml.safe_load(f)


def _configs(folder):
    return sorted(f'configs/{folder}/{osp.basename(p)}'
                  for p in glob.glob(osp.join(REPO, 'configs', folder, '*.py')))


def _metafile(folder):
    return _yaml(osp.join(REPO, 'configs', folder, 'metafile.yml'))


def test_there_are_config_folders():
    assert {'fmkt', 'baselines'} <= set(CONFIG_DIRS)


def test_model_index_imports_one_metafile_per_config_folder():
    index = _yaml(osp.join(REPO, 'model-index.yml'))
    assert sorted(index['Import']) == sorted(f'configs/{d}/metafile.yml' for d in CONFIG_DIRS)


@pytest.mark.parametrize('folder', CONFIG_DIRS)
def test_metafile_lists_every_config_of_its_folder_and_nothing_else(folder):
    meta = _metafile(folder)
    models = meta['Models']
    listed = [m['Config'] for m in models]
    assert len(listed) == len(set(listed)), 'a config is listed twice'
    existing = _configs(folder)
    assert sorted(listed) == existing, (
        f'configs/{folder}/metafile.yml: not listed: {sorted(set(existing) - set(listed))}; '
        f'listed but missing: {sorted(set(listed) - set(existing))}')
    collections = {c['Name']: c for c in meta['Collections']}
    for model in models:
        assert tuple(k for k in MODEL_KEYS if k in model) == MODEL_KEYS, model.get('Name')
        assert model['Name'] == osp.splitext(osp.basename(model['Config']))[0]
        assert model['In Collection'] in collections, model['Name']
        assert isinstance(model['Results'], list)
        for result in model['Results']:
            assert {'Task', 'Dataset', 'Metrics'} <= set(result), model['Name']
            assert all(isinstance(v, (int, float)) for v in result['Metrics'].values())
        teacher = model['Metadata'].get('Teacher')
        if isinstance(teacher, dict) and str(teacher.get('Config', '')).startswith('configs/'):
            assert osp.isfile(osp.join(REPO, teacher['Config'])), teacher['Config']
    for collection in collections.values():
        assert osp.isfile(osp.join(REPO, collection['README'])), collection['README']
        assert collection['Paper']['Title']


def test_model_index_loads_with_openmmlab_modelindex():
    """The schema check of the library mim itself uses to read model-index.yml."""
    modelindex = pytest.importorskip('modelindex')
    index = modelindex.load(osp.join(REPO, 'model-index.yml'))
    names = [m.name for m in index.models]
    assert len(names) == sum(len(_configs(d)) for d in CONFIG_DIRS)
    assert all(m.config and osp.isfile(osp.join(REPO, m.config)) for m in index.models)


@pytest.mark.parametrize('folder', CONFIG_DIRS)
def test_config_readme_has_a_row_per_config_with_its_figure(folder):
    """Every config has one row in its folder's README table; the row shows the metafile's
    figure, or "not trained here" when the metafile has none."""
    text = open(osp.join(REPO, 'configs', folder, 'README.md')).read()
    assert text.startswith('# ') and '## Results and models' in text and '## Citation' in text
    assert '| Location |' in text and '| Config | Download |' in text
    for model in _metafile(folder)['Models']:
        name = osp.basename(model['Config'])
        rows = [line for line in text.splitlines() if f'](./{name})' in line]
        assert len(rows) == 1, f'configs/{folder}/README.md: {len(rows)} rows for {name}'
        if model['Results']:
            for value in model['Results'][0]['Metrics'].values():
                assert f'{value:.2f}' in rows[0], (name, value)
            assert 'not trained here' not in rows[0]
        else:
            assert 'not trained here' in rows[0], name


def _load_setup():
    spec = importlib.util.spec_from_file_location('fmkt_setup', osp.join(REPO, 'setup.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # setup() runs only as __main__
    return module


def test_add_mim_extension_copies_or_links_configs_tools_and_model_index(tmp_path):
    setup_py = _load_setup()
    assert setup_py.MIM_FILES == MIM_FILES
    copy = tmp_path / 'copy'
    written = setup_py.add_mim_extension(copy, 'copy')
    assert sorted(osp.basename(p) for p in written) == sorted(MIM_FILES)
    for name in MIM_FILES:
        assert not (copy / name).is_symlink()
    with open(osp.join(REPO, 'tools', 'train.py')) as f:
        assert (copy / 'tools' / 'train.py').read_text() == f.read()
    assert not list(copy.rglob('__pycache__'))
    assert sorted(p.relative_to(copy / 'configs').as_posix()
                  for p in (copy / 'configs').rglob('*.py')) == sorted(
        osp.relpath(p, osp.join(REPO, 'configs'))
        for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'), recursive=True))

    link = tmp_path / 'pkg' / '.mim'
    for _ in range(2):  # a second run replaces the links
        setup_py.add_mim_extension(link, 'symlink')
    for name in MIM_FILES:
        assert (link / name).is_symlink()
        assert not osp.isabs(os.readlink(link / name))
        assert osp.realpath(link / name) == osp.realpath(osp.join(REPO, name))
    setup_py.add_mim_extension(link, 'copy')  # a copy replaces links
    assert not (link / 'configs').is_symlink() and (link / 'configs').is_dir()
    with pytest.raises(ValueError, match='copy or symlink'):
        setup_py.add_mim_extension(link, 'hardlink')


def _source_copy(dst):
    ignore = shutil.ignore_patterns('__pycache__', '*.pyc', '.mim', '*.egg-info', 'build')
    os.makedirs(dst)
    for name in BUILD_INPUTS:
        src = osp.join(REPO, name)
        if osp.isdir(src):
            shutil.copytree(src, osp.join(dst, name), ignore=ignore)
        else:
            shutil.copy(src, osp.join(dst, name))
    return dst


@pytest.fixture(scope='module')
def installed(tmp_path_factory):
    """fmkt_plugin installed (not editable) into a folder, as `pip install .` installs it."""
    base = tmp_path_factory.mktemp('mim')
    src = _source_copy(str(base / 'src'))
    site = str(base / 'site')
    out = subprocess.run(
        [sys.executable, '-m', 'pip', 'install', '--no-deps', '--no-build-isolation',
         '--no-index', '--disable-pip-version-check', '-q', '--target', site, src],
        capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return site


def _env(site):
    return dict(os.environ, PYTHONPATH=site, OMP_NUM_THREADS='1')


@pytest.mark.slow
def test_a_regular_install_carries_the_mim_folder(installed):
    mim = osp.join(installed, 'fmkt_plugin', '.mim')
    for name in MIM_FILES:
        assert osp.exists(osp.join(mim, name)) and not osp.islink(osp.join(mim, name)), name
    def tree(root):
        return sorted(osp.relpath(p, root) for p in glob.glob(
            osp.join(root, 'configs', '**', '*.py'), recursive=True))

    assert tree(mim) == tree(REPO) and len(tree(mim)) > 29
    for folder in CONFIG_DIRS:
        assert osp.isfile(osp.join(mim, 'configs', folder, 'metafile.yml'))
    assert osp.isfile(osp.join(mim, 'tools', 'train.py'))
    assert osp.isfile(osp.join(mim, 'tools', 'test.py'))


@pytest.mark.slow
def test_mim_train_runs_a_packaged_config_for_one_iteration(installed, tiny_imagenet, tmp_path):
    """`mim train fmkt_plugin CONFIG` finds the config by name in the installed package and runs
    the package's .mim/tools/train.py: one iteration (8 images, batch 8) on a tiny ImageNet."""
    pytest.importorskip('mim')
    options = ['train_cfg.max_epochs=1', 'default_hooks.logger.interval=1',
               'auto_scale_lr.enable=True',
               'model.allow_random_teacher=True', 'model.teacher_ckpt=None']
    for split, folder, ann in (('train', 'train', 'meta/train.txt'),
                               ('val', 'val', 'meta/val.txt'), ('test', 'val', 'meta/val.txt')):
        key = f'{split}_dataloader'
        options += [f'{key}.batch_size=8', f'{key}.num_workers=0',
                    f'{key}.persistent_workers=False', f'{key}.dataset.data_root={tiny_imagenet}',
                    f'{key}.dataset.ann_file={ann}', f'{key}.dataset.data_prefix={folder}']
    work = str(tmp_path / 'work')
    out = subprocess.run(
        [sys.executable, '-m', 'mim', 'train', 'fmkt_plugin', 'resnet34_res18_in1k.py',
         '--work-dir', work, '--no-validate', '--cfg-options'] + options,
        capture_output=True, text=True, env=_env(installed), cwd=str(tmp_path))
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-4000:]
    script = osp.join(installed, 'fmkt_plugin', '.mim', 'tools', 'train.py')
    assert f'Training command is {sys.executable} {script}' in text
    assert osp.join('.mim', 'configs', 'fmkt', 'resnet34_res18_in1k.py') in text
    assert re.search(r'Epoch\(train\) \[1\]\[1/1\]', text), text[-2000:]
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    assert_log_trained_stably(work)


@pytest.mark.slow
def test_an_editable_build_links_the_mim_folder_into_the_source(tmp_path):
    src = _source_copy(str(tmp_path / 'src'))
    out = subprocess.run(
        [sys.executable, '-c', 'from setuptools import build_meta as b; '
         'print(b.build_editable("dist"))'], capture_output=True, text=True, cwd=src)
    assert out.returncode == 0, out.stderr[-3000:]
    mim = osp.join(src, 'fmkt_plugin', '.mim')
    for name in MIM_FILES:
        assert osp.islink(osp.join(mim, name)), name
        assert osp.realpath(osp.join(mim, name)) == osp.realpath(osp.join(src, name))
    # the mmcv-lite start-up hook sits at the root of the editable wheel (site-packages)
    wheel = out.stdout.strip().splitlines()[-1]
    with zipfile.ZipFile(osp.join(src, 'dist', wheel)) as z:
        assert z.read('fmkt_mmcv_ext_hook.pth').decode().startswith('import fmkt_mmcv_ext_hook')


@pytest.mark.slow
def test_a_regular_install_puts_the_mmcv_ext_hook_in_site_packages(installed):
    """The .pth file and its module land at the root of the install (site-packages), beside
    the package: the finder that gives mmcv-lite its ops is registered at interpreter start."""
    with open(osp.join(installed, 'fmkt_mmcv_ext_hook.pth')) as f:
        line = f.read().strip()
    assert line == 'import fmkt_mmcv_ext_hook; fmkt_mmcv_ext_hook.register()'
    assert osp.isfile(osp.join(installed, 'fmkt_mmcv_ext_hook.py'))


# ``fmkt_plugin::path`` base configs work through compat Fix 10 (mmengine 0.10 knows only the
# scopes in MODULE2PACKAGE, and looks for an editable install's .mim in site-packages).


def _child_of_packaged_config(directory):
    path = osp.join(str(directory), 'child.py')
    with open(path, 'w') as f:
        f.write("_base_ = ['fmkt_plugin::fmkt/resnet34_res18_in1k.py']\n"
                "model = dict(allow_random_teacher=True, teacher_ckpt=None)\n")
    return path


@pytest.mark.slow
def test_a_config_inherits_a_packaged_config_of_an_installed_package(installed, tmp_path):
    child = _child_of_packaged_config(tmp_path)
    code = ('import fmkt_plugin, sys; from mmengine.config import Config; '
            'cfg = Config.fromfile(sys.argv[1]); '
            "assert fmkt_plugin.__file__.startswith(sys.argv[2]), fmkt_plugin.__file__; "
            "print(cfg.model.type, cfg.model.architecture.head.type)")
    out = subprocess.run([sys.executable, '-c', code, child, installed], capture_output=True,
                         text=True, env=_env(installed), cwd=str(tmp_path))
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split()[-2:] == ['FMKTDistill', 'FlowMatchingClsHead']


def test_a_config_inherits_a_packaged_config_of_the_source_install(tmp_path):
    from mmengine.config import Config
    cfg = Config.fromfile(_child_of_packaged_config(tmp_path))
    assert cfg.model.type == 'FMKTDistill'
    assert cfg.model.architecture.head.type == 'FlowMatchingClsHead'


def test_no_two_config_files_share_a_name():
    """``mim train fmkt_plugin NAME`` finds a config by its file name anywhere under configs/: a
    base of the same name as a shipped config (the ResNet-50 -> MobileNet-V2 pair once) made it
    pick the base."""
    names = [osp.basename(p) for p in glob.glob(osp.join(REPO, 'configs', '**', '*.py'),
                                                   recursive=True)]
    assert len(names) == len(set(names)), sorted(n for n in set(names) if names.count(n) > 1)


def test_mim_finds_every_shipped_config_by_name_in_this_environment(tmp_path):
    """``mim train fmkt_plugin NAME`` looks NAME up under mim's ``get_installed_path``; for the
    bootstrap's editable install mim 0.3 answered a folder that does not exist (the first name of
    top_level.txt in site-packages), until the start-up hook wrapped it. Run in a fresh
    interpreter, as mim runs, from a folder without the repository on sys.path."""
    names = sorted(osp.basename(p) for d in ('fmkt', 'baselines')
                   for p in glob.glob(osp.join(REPO, 'configs', d, '*.py')))
    code = ('import os.path as osp, sys\n'
            'from mim.utils import get_installed_path, recursively_find\n'
            'root = get_installed_path("fmkt_plugin")\n'
            'for name in sys.argv[1:]:\n'
            '    found = recursively_find(root, name, followlinks=True)\n'
            '    print(name, len(found), osp.realpath(found[0]) if found else "-")\n')
    out = subprocess.run([sys.executable, '-c', code] + names, cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=300,
                         env=dict(os.environ, PYTHONPATH=''))
    assert out.returncode == 0, out.stderr[-3000:]
    rows = [line.split() for line in out.stdout.splitlines()]
    assert [r[0] for r in rows] == names
    for name, count, path in rows:
        assert count == '1', (name, count)
        assert osp.basename(osp.dirname(path)) in ('fmkt', 'baselines') and \
            osp.basename(path) == name
