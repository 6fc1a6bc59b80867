"""fmkt_plugin.models.short_names: the one table of short component names."""
import pathlib
import re

import pytest
from helpers import REPO

from fmkt_plugin.models.builder import resolve_type
from fmkt_plugin.models.short_names import SHORT_NAMES, add_short_name, short_names


def test_the_table_holds_every_short_name_by_kind():
    assert {k: sorted(v) for k, v in SHORT_NAMES.items()} == {
        'schedule': ['rectified', 've', 'vp'],
        'meta_encoder': ['conv', 'linear', 'mlp', 'transformer'],
        'metric': ['mse'],
    }
    vp = SHORT_NAMES['schedule']['vp']
    assert resolve_type('VP', 'flow.schedule.type', kind='schedule') is vp
    assert resolve_type('MSEMetric', 'metric.type', kind='metric') is short_names('metric')['mse']
    with pytest.raises(ValueError, match=r"metric\.type: unknown type 'mlp' \(short names: "
                       r"\['mse'\]\)"):
        resolve_type('mlp', 'metric.type', kind='metric')  # a short name of another kind


def test_a_taken_short_name_is_refused():
    class Other:
        pass

    with pytest.raises(ValueError, match="short schedule name 'vp' of Other is taken by "
                       'VPSchedule'):
        add_short_name('schedule', 'vp', Other)
    assert SHORT_NAMES['schedule']['vp'].__name__ == 'VPSchedule'


def test_no_other_short_name_table_and_every_name_documented():
    """No ``*_ALIASES`` table or ``aliases=`` mapping beside this one; the config guide's
    "Choosing the parts" table quotes every short name."""
    package = pathlib.Path(REPO, 'fmkt_plugin')
    stray = [f'{p.relative_to(REPO)}: {m.group(0)}' for p in package.rglob('*.py')
             for m in re.finditer(r'\w*_ALIASES\b|aliases=\{', p.read_text())]
    assert stray == []
    guide = pathlib.Path(REPO, 'docs', 'user_guides', 'your_own_config.md').read_text()
    for kind, table in SHORT_NAMES.items():
        for name in table:
            assert f"`'{name}'`" in guide, f'{kind} short name {name!r} not in the guide'
