"""Equal tuning: every method's grid (declared here, in one place), the pick and the file that
carries the picks to the benchmark. ``python -m benchmarks.run --tune`` runs each method's first
:data:`TRIALS` grid points (settings, :mod:`benchmarks.classification.settings`) on the validation
split, picks the best validation mean over seeds and pairs and writes :data:`TUNED_FILE`, which
the benchmark applies per method (``--untuned`` ignores it).
"""
import datetime
import itertools
import json
import os.path as osp
from typing import Dict, List, Optional, Sequence

from ..common.files import write_json
from .configs import PAIRS, family, pair_hparams, split_key
from .settings import apply_settings

__all__ = [
    'TRIALS', 'GRID', 'TUNED_FILE', 'grid_points', 'apply_settings', 'tuned_methods',
    'pick_best', 'load_picks', 'write_picks', 'setting_label'
]

#: Trials per tuned method: each runs exactly this many settings of its grid.
TRIALS = 4

#: The flow options of the FM-KT grids, slowest-varying first: the first 4 points are
#: {interpolant, displacement} estimate x the two learning-rate multipliers at N=8.
_FLOW_AXES = {
    'flow.num_steps': (8, 4),
    'flow.estimate': ('interpolant', 'displacement'),
}

#: Per method: axes ``{path: values}``; the first value of every axis is the untuned default,
#: so the first point is ``HPARAMS`` itself. Methods not listed are not tuned (student alone
#: has nothing to tune; the FM-KT^Theta variants take FM-KT (KD metric)'s picks).
GRID: Dict[str, Dict[str, tuple]] = {
    'kd': {'kd.tau': (4.0, 1.0), 'kd.kd_weight': (0.9, 0.5)},
    'dkd': {'dkd.beta': (8.0, 2.0), 'dkd.tau': (4.0, 1.0)},
    'dist': {'dist.tau': (4.0, 1.0), 'dist.inter+dist.intra': (2.0, 1.0)},
    'fmkt_kd': dict(_FLOW_AXES, **{'flow_lr_mult.fmkt': (0.1, 1.0)}),
    'fmkt_dist': dict(_FLOW_AXES, **{'flow_lr_mult.fmkt': (0.1, 1.0)}),
    'ofmkt': dict(_FLOW_AXES, **{'flow_lr_mult.ofmkt': (1.0, 0.1)}),
    # the authors' logit-branch tau and weights first, then KD-like alternatives
    'diffkd': {'diffkd.logit_tau': (1.0, 4.0),
               'diffkd.loss_weight+diffkd.logit_weight': (1.0, 0.5)},
    # RDR: no paper settings; our reading's weights first (KD's logit loss takes KD's picks)
    'rdr': {'rdr.guide_weight': (1.0, 0.0), 'rdr.loss_weight': (1.0, 0.3)},
    # ViTKD + NKD (ViT pairs): the authors' DeiT weights, then alpha and beta x 49 (their sums
    # run over 49x fewer token features here than on ImageNet); NKD's gamma 1 (their DeiT
    # setting) or 1.5 (their loss's default)
    'vitkd': {'vitkd.scale': (1.0, 49.0), 'vitkd.nkd_gamma': (1.0, 1.5)},
}

#: The picks file the benchmark reads (committed; written by the tune mode).
TUNED_FILE = osp.join(osp.dirname(osp.abspath(__file__)), 'tuned.json')


def grid_points(method: str, trials: int = TRIALS) -> List[dict]:
    """The settings a method is tuned over: the first ``trials`` points of its grid (last axis
    fastest).

    Raises:
        ValueError: the method has no grid, or fewer points than ``trials``.
    """
    if method not in GRID:
        raise ValueError(f'no tuning grid for {method!r}; tuned methods: {sorted(GRID)}')
    axes = GRID[method]
    points = [dict(zip(axes, values)) for values in itertools.product(*axes.values())]
    if len(points) < trials:
        raise ValueError(f'tuning grid of {method!r} has {len(points)} points, fewer than the '
                         f'{trials} trials every method gets')
    return points[:trials]


def tuned_methods(methods: Sequence[str]) -> List[str]:
    """The methods among ``methods`` that have a grid (in the given order)."""
    return [m for m in methods if m in GRID]


def setting_label(setting: dict) -> str:
    """``'kd.tau=1, kd.kd_weight=0.9'`` (``'defaults'`` for an empty setting)."""
    if not setting:
        return 'defaults'
    return ', '.join(f'{k}={v:g}' if isinstance(v, float) else f'{k}={v}'
                     for k, v in setting.items())


def pick_best(trials: List[dict]) -> dict:
    """The trial with the highest validation mean (the earliest one on a tie).

    Args:
        trials: dicts with ``setting`` and ``mean``.
    """
    if not trials:
        raise ValueError('pick_best: no trials')
    return max(enumerate(trials), key=lambda it: (it[1]['mean'], -it[0]))[1]


def _family_hparams(fam: str) -> dict:
    """The ``HPARAMS`` of a pair of family ``fam`` (the settings a pick of it applies to)."""
    pairs = [p for p in PAIRS if family(p) == fam]
    if not pairs:
        raise ValueError(f'no pair of family {fam!r}')
    return pair_hparams(pairs[0])


def load_picks(path: Optional[str] = None) -> Dict[str, dict]:
    """The picks of a tuned file (``{}`` when ``path`` is None and the default file is absent):
    ``{method: setting}``, a method of another family than the CNN pairs' as
    ``'<method>@<family>'`` (``configs.picks_key``).

    Raises:
        ValueError: a malformed file, an unknown method, family or setting, naming the file.
    """
    from .methods import get
    if path is None:
        if not osp.isfile(TUNED_FILE):
            return {}
        path = TUNED_FILE
    with open(path) as f:
        try:
            data = json.load(f)
        except json.JSONDecodeError as err:
            raise ValueError(f'{path}: not JSON ({err})') from None
    picks = data.get('picks') if isinstance(data, dict) else None
    if not isinstance(picks, dict):
        raise ValueError(f'{path}: expected an object with "picks": {{method: setting}}')
    for key, setting in picks.items():
        try:
            method, fam = split_key(key)
            get(method)
            if not isinstance(setting, dict):
                raise ValueError(f'setting must be an object, got {setting!r}')
            apply_settings(_family_hparams(fam), setting)
        except ValueError as err:
            raise ValueError(f'{path}: picks.{key}: {err}') from None
    return picks


def write_picks(path: str, picks: Dict[str, dict], trials: Dict[str, List[dict]],
                meta: dict) -> None:
    """Write the picks with every trial's validation figures and the tuning setting.

    The methods tuned now replace their entries; the other methods' picks and trials in an
    existing file are kept (a tune run of some methods does not drop the others' picks), and
    ``meta`` gets one entry per tune run under ``runs`` (``meta`` itself: the latest)."""
    old = {}
    if osp.isfile(path):
        with open(path) as f:
            old = json.load(f)
    meta = dict(meta, methods=sorted(picks),
                written=datetime.datetime.now().strftime('%Y-%m-%d %H:%M'))
    earlier = old.get('meta', {}).get('runs') or ([old['meta']] if old.get('meta') else [])
    kept = {m: s for m, s in old.get('picks', {}).items() if m not in picks}
    kept_trials = {m: t for m, t in old.get('trials', {}).items() if m not in picks}
    write_json(path, dict(picks=dict(kept, **picks), trials=dict(kept_trials, **trials),
                          meta=dict(meta, runs=[{k: v for k, v in r.items() if k != 'runs'}
                                                for r in earlier] + [meta])))
