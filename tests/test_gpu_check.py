"""scripts/gpu_check.py: the one command that checks every GPU claim, run here in its tiny
form (every part, on the CPU), so that it cannot rot before a GPU runs it."""
import json
import os.path as osp

import pytest
from helpers import load_script

gpu_check = load_script('gpu_check')


def test_eta_track_reads_the_progress_lines():
    text = ('[0m00s | 0/3 done | ETA ?] start kd-s0\n'
            'other line\n'
            '[1m05s | 1/3 done | ETA 2m10s] kd-s0: top-1 80.00\n')
    assert gpu_check.eta_track(text) == [
        dict(elapsed_s=0, done=0, total=3, eta_s=None),
        dict(elapsed_s=65, done=1, total=3, eta_s=130)]


def test_cuda_form_checks_every_precision_and_the_cuda_graph_compile():
    cuda = gpu_check.SIZES['cuda']
    assert cuda['precisions'] == (None, 'bf16', 'fp16') and cuda['amp'] == 'fp16'
    assert cuda['compiled'] == dict(scope='flow', mode='reduce-overhead')
    assert cuda['bench'][:2] == ['--profile', 'gpu']


@pytest.mark.slow
def test_tiny_form_runs_every_part_and_writes_its_report(tmp_path):
    report = gpu_check.main(['--tiny', '--out', str(tmp_path)])
    assert list(report['parts']) == list(gpu_check.PARTS)
    failed = {k: v.get('error') for k, v in report['parts'].items() if not v['ok']}
    assert not failed and report['ok']
    parts = report['parts']
    assert parts['classification']['top1_distill'] == parts['classification']['top1_exported']
    assert parts['detection_fmnist']['export_images_mismatched'] == 0
    assert parts['faster_rcnn']['iters'] == 2 and parts['faster_rcnn']['mAP'] is not None
    assert parts['focal_loss']['anchors'] > 0 and 0 < parts['focal_loss']['focal_share'] < 1
    tables = parts['overhead']['tables']
    assert [(t['precision'], t['compiled']) for t in tables] == [('fp32', False), ('fp32', True)]
    assert parts['benchmark_slice']['progress_lines'] > 0
    assert parts['benchmark_slice']['predicted_total_s'] is not None
    with open(osp.join(tmp_path, 'gpu_check.json')) as f:
        saved = json.load(f)
    assert saved['machine']['device'] == 'cpu' and saved['form'] == 'tiny'
    md = open(osp.join(tmp_path, 'gpu_check.md')).read()
    assert md.startswith('# GPU check (tiny form)') and '| overhead | passed |' in md


@pytest.mark.slow
def test_carried_folder_installs_and_runs_the_check_without_a_venv(tmp_path):
    """scripts/gpu_carry.sh gathers the wheels (for this Python) and Fashion-MNIST; gpu_check.sh
    --carry installs them into a scratch --target folder, nothing compiled, and the check imports
    the whole stack from there, mmcv's ops from the plugin's provider."""
    import os
    import subprocess
    import sys

    from helpers import REPO
    carry, out = tmp_path / 'carry', tmp_path / 'out'
    version = f'{sys.version_info.major}.{sys.version_info.minor}'
    subprocess.run(['bash', osp.join(REPO, 'scripts', 'gpu_carry.sh'), str(carry), version],
                   check=True, timeout=600)
    size = sum(f.stat().st_size for f in carry.rglob('*') if f.is_file())
    assert size <= 60 * 2**20 and len(list((carry / 'fashion-mnist').glob('*.gz'))) == 4
    env = dict(os.environ, PYTHON=sys.executable, CC='false', CXX='false')
    run = subprocess.run(['bash', osp.join(REPO, 'scripts', 'gpu_check.sh'), '--carry',
                          str(carry), '--tiny', '--parts', 'faster_rcnn', 'focal_loss',
                          '--out', str(out)], env=env, capture_output=True, text=True,
                         timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    with open(out / 'gpu_check.json') as f:
        report = json.load(f)
    assert report['ok'] and report['parts']['faster_rcnn']['iters'] == 2
    site = report['packages']['mmdet'].rsplit('/mmdet', 1)[0]
    assert 'fmkt-site' in site
    for name in ('mmengine', 'mmcv', 'mmpretrain', 'mmrazor'):
        assert report['packages'][name].startswith(site), name
    assert report['packages']['mmcv._ext'].endswith(osp.join('compat', 'mmcv_ext.py'))
