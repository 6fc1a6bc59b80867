"""Assembly of a finished run: the records, the settings and provenance into ``results.json``,
the report and the plots (benchmark), or the trials and the picks file (tune)."""
import os.path as osp
from typing import Dict, List, Optional

from ..common.eta import fmt_time
from ..common.files import REPO, write_json, write_text
from ..common.fmnist import data_facts
from ..common.provenance import portable, run_facts
from . import configs
from .methods import get
from .report import (
    summarize,
    summarize_tune,
    tune_markdown,
    write_markdown,
    write_plots,
)
from .tuning import TRIALS, write_picks

__all__ = ['split_records', 'base_meta', 'write_benchmark', 'write_tune']


def _roots(out_dir: str, cache_dir: str) -> Dict[str, str]:
    """The folders a published results.json names its paths relative to."""
    return {'cache': cache_dir, 'out': osp.dirname(osp.abspath(out_dir)), 'repo': REPO}


def split_records(results: Dict[str, dict], pairs: List[str]) -> tuple:
    """``(runs, teachers)``; a teacher-free run (trained once per seed and family) is listed
    under every pair of its family."""
    runs = [r for r in results.values() if r['kind'] == 'run']
    teachers = [r for r in results.values() if r['kind'] == 'teacher']
    for r in list(runs):
        if not get(r['method']).teacher:
            for pair in pairs:
                if pair != r['pair'] and configs.family(pair) == configs.family(r['pair']):
                    runs.append(dict(r, pair=pair, shared_with=r['pair']))
    return runs, teachers


def base_meta(args, prof: dict, setting: dict, runs: List[dict], data_root: str,
              started: float, argv: Optional[List[str]]) -> dict:
    """Settings and provenance of a run (profile, budget, device and machine, versions, data
    hashes)."""
    first = runs[0] if runs else {}
    return dict(
        profile=args.profile, holdout=args.holdout,
        evaluated_on=('validation split held out of the training images' if args.holdout
                      else 'test split'),
        seeds=list(prof['seeds']), pairs=list(prof['pairs']), methods=list(prof['methods']),
        student_epochs=prof['epochs'], theta_epochs=prof['theta_epochs'],
        teacher_epochs=prof['teacher_epochs'], train_images=first.get('train_images'),
        test_images=first.get('test_images'), jobs=setting['workers'],
        threads=setting['threads'], amp=setting['amp'], hparams=configs.HPARAMS,
        pair_hparams={p: configs.PAIRS[p]['hparams'] for p in prof['pairs']
                      if configs.PAIRS[p].get('hparams')},
        data=data_facts(data_root),
        **run_facts(setting['device'], started, 'benchmarks.run', argv))


def write_benchmark(out_dir: str, cache_dir: str, meta: dict, runs: List[dict],
                    teachers: List[dict], extra_markdown: str = '') -> dict:
    """Write results.json, results.md (``extra_markdown`` closing it) and the plots; print the
    report; return the payload."""
    summary = summarize(runs, teachers, meta['pairs'], meta['methods'])
    payload = portable(dict(meta=meta, teachers=teachers, runs=runs, summary=summary),
                       _roots(out_dir, cache_dir))
    write_json(osp.join(out_dir, 'results.json'), payload)
    text = write_markdown(osp.join(out_dir, 'results.md'), summary, meta, extra_markdown)
    plots = write_plots(out_dir, summary, runs)
    print('\n' + text)
    print(f'wrote {osp.join(out_dir, "results.json")}, results.md, '
          f'{", ".join(osp.basename(p) for p in plots)} in {fmt_time(meta["wall_time_s"])}',
          flush=True)
    return payload


def write_tune(out_dir: str, cache_dir: str, meta: dict, runs: List[dict],
               teachers: List[dict], picks_path: str) -> dict:
    """Write the tune results (results.json, results.md) and the picks file; return the
    payload."""
    trials = summarize_tune(runs)
    picks = {m: next(t['setting'] for t in items if t['picked']) for m, items in trials.items()}
    meta = dict(meta, trials=TRIALS)
    payload = portable(dict(meta=meta, teachers=teachers, runs=runs, trials=trials,
                            picks=picks), _roots(out_dir, cache_dir))
    write_json(osp.join(out_dir, 'results.json'), payload)
    text = tune_markdown(trials, meta)
    write_text(osp.join(out_dir, 'results.md'), text)
    keep = ('profile', 'holdout', 'seeds', 'pairs', 'student_epochs', 'teacher_epochs',
            'trials', 'device', 'machine', 'command')
    write_picks(picks_path, picks, {m: [dict(setting=t['setting'], mean=t['mean'], std=t['std'],
                                             n=t['n']) for t in items]
                                    for m, items in trials.items()},
                {k: meta[k] for k in keep})
    print('\n' + text)
    print(f'wrote {picks_path} and {osp.join(out_dir, "results.md")} in '
          f'{fmt_time(meta["wall_time_s"])}', flush=True)
    return payload
