"""Figures the docs and configs quote, each tied to the results file it comes from: a re-run that
changes the file, or an edit of the text, fails here until the two agree again."""
import json
import os.path as osp
import re

import pytest
from helpers import REPO

RESULTS = osp.join(REPO, 'benchmarks', 'results')


def _read(*parts):
    with open(osp.join(REPO, *parts), encoding='utf-8') as f:
        return f.read()


def _json(*parts):
    return json.loads(_read('benchmarks', 'results', *parts))


def _overhead_ratio(key):
    (row, ) = [r for r in _json('overhead', 'overhead.json')['ratios'] if r['key'] == key]
    return row['ratio']


def _aux_retention():
    """The auxiliary FM-KT^Theta form's retention line of the main job (test split)."""
    text = _read('benchmarks', 'results', 'default', 'results.md')
    lines = [line for line in text.splitlines()
             if 'auxiliary flow head) retention' in line]
    found = [re.search(r'= ([\d.-]+), 95% CI \[([\d.-]+), ([\d.-]+)\]', line).groups()
             for line in lines]
    return found


def _ops():
    """Device operators per train step, as the main job's results.json records them."""
    text = _read('benchmarks', 'results', 'default', 'results.json')
    return {k: int(v) for k, v in re.findall(
        r'"(kd|fmkt_logit|fmkt_feature)": \{[^{}]*?"ops": (\d+)', text)}


@pytest.mark.parametrize('doc', ['README.md', 'docs/notes/limitations.md'])
def test_flow_head_inference_ratio_at_n8(doc):
    ratio = f'{_overhead_ratio("infer_flow_N8"):.3f}'
    quoted = re.findall(r'\(([\d.]+)x a plain\s+ResNet-18 at N=8', _read(doc))
    assert quoted == [ratio], (doc, quoted, ratio)


def test_operator_counts_of_the_overhead_page():
    ops = _ops()
    text = _read('docs', 'advanced_guides', 'overhead.md')
    m = re.search(r'KD (\d+), logit level (\d+) \(([\d.]+)x\), feature\s+level (\d+) '
                  r'\(([\d.]+)x\)', text)
    assert m, 'the operator counts are no longer quoted as the test expects'
    kd, logit, r_logit, feature, r_feature = m.groups()
    assert (int(kd), int(logit), int(feature)) == (ops['kd'], ops['fmkt_logit'],
                                                    ops['fmkt_feature'])
    assert r_logit == f'{ops["fmkt_logit"] / ops["kd"]:.2f}'
    assert r_feature == f'{ops["fmkt_feature"] / ops["kd"]:.2f}'


def test_detection_scene_counts():
    meta = _json('det-default', 'results.json')['meta']
    counts = meta['scenes']['num_images']
    text = _read('docs', 'benchmark', 'detection.md')
    m = re.search(r'train (\d+) / val (\d+) /\s+test (\d+) scenes', text)
    assert m and tuple(map(int, m.groups())) == (counts['train'], counts['val'], counts['test'])


@pytest.mark.parametrize('where', [
    'README.md', 'configs/fmkt/resnet50_res18_theta-aux_in1k.py', 'docs/benchmark/theta.md'])
def test_auxiliary_theta_retention(where):
    """The main job's current test-split retention of the auxiliary FM-KT^Theta form, quoted as
    '0.55 [0.23, 0.92]' wherever the docs state what the shipped form keeps."""
    rows = _aux_retention()
    test_split = rows[-1]  # one line per pair, then the pooled one
    want = f'{float(test_split[0]):.2f} [{float(test_split[1]):.2f}, {float(test_split[2]):.2f}]'
    assert want in re.sub(r'\s+', ' ', _read(where)), (where, want)
