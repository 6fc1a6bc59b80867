"""The published results folders: each is indexed in benchmarks/results/README.md with its
machine, and the way the index says the machine is known holds against the results files."""
import glob
import json
import os
import os.path as osp
import re

import pytest
from helpers import REPO

RESULTS = osp.join(REPO, 'benchmarks', 'results')


def _index():
    with open(osp.join(RESULTS, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    rows = {}
    for line in text.splitlines():
        m = re.match(r'\| \[([\w-]+)\]\(([^)]+)\) \|(.*)\|$', line)
        if m:
            cells = [c.strip() for c in m.group(3).split('|')]
            rows[m.group(1)] = dict(link=m.group(2), machine=cells[-2], known=cells[-1])
    return rows


def _payloads(folder):
    """The results files of a folder: benchmark runs (``meta``) and overhead tables (``ratios``,
    their ``machine`` at the top)."""
    out = []
    for path in sorted(glob.glob(osp.join(RESULTS, folder, '*.json'))):
        with open(path) as f:
            payload = json.load(f)
        if isinstance(payload, dict) and ('meta' in payload or 'ratios' in payload):
            out.append(payload)
    return out


def test_every_results_folder_is_indexed_with_an_existing_report():
    rows = _index()
    folders = sorted(d for d in os.listdir(RESULTS) if osp.isdir(osp.join(RESULTS, d)))
    assert sorted(rows) == folders
    for name, row in rows.items():
        assert osp.isfile(osp.join(RESULTS, row['link'])), row['link']
        assert row['known'].split(' ')[0] in ('recorded', 'teachers', 'not'), row


@pytest.mark.parametrize('name', [n for n, r in _index().items() if r['known'] == 'recorded'])
def test_recorded_machines_are_those_of_the_results_files(name):
    row, payloads = _index()[name], _payloads(name)
    assert payloads, name
    for payload in payloads:
        machine = payload['meta']['machine'] if 'meta' in payload else payload['machine']
        assert f'{machine["cores"]}-core {machine["cpu"]}, {machine["simd"]}' == row['machine']
    with open(osp.join(RESULTS, row['link']), encoding='utf-8') as f:
        assert f'{machine["cpu"]}, {machine["simd"]}' in f.read()  # the report says it too


@pytest.mark.parametrize('name', [n for n, r in _index().items()
                                  if r['known'].startswith('teachers')])
def test_machines_known_by_their_teachers_match_a_recorded_run(name):
    rows = _index()
    other = re.search(r"= ([\w-]+?)(?:'s|')\)", rows[name]['known']).group(1)
    assert rows[other]['known'] == 'recorded' and rows[other]['machine'] == rows[name]['machine']

    def teachers(folder):
        return {t['key']: t['top1'] for p in _payloads(folder) for t in p.get('teachers', ())}

    mine, theirs = teachers(name), teachers(other)
    assert mine and set(mine) == set(theirs), (name, other)
    assert mine == theirs
