"""The divergence rule that every end-to-end test and the GPU check apply to a run's losses."""
import json

import pytest
from fixtures.smoke import GROWTH_LIMIT, divergence, logged_train_rows
from helpers import assert_log_trained_stably


@pytest.mark.parametrize('losses, why', [
    ([14.8, 13.9, 12.2, 11.7], None),
    ([2.0, 2.0 * GROWTH_LIMIT], None),  # the limit itself passes
    ([14.8, 155.7, 740.2, 42695.9], 'grew more than 10x'),  # the RDR run that exploded
    ([3.0, float('nan')], 'not finite'),
    ([float('inf')], 'not finite'),
    ([], 'never logged'),
])
def test_divergence_rule(losses, why):
    result = divergence(losses)
    assert result is None if why is None else why in result


def _log(work, stamp, rows, config_lr=0.2):
    vis = work / stamp / 'vis_data'
    vis.mkdir(parents=True)
    (vis / f'{stamp}.json').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    (vis / 'scalars.json').write_text(json.dumps({'loss': 1e9, 'lr': 9.0, 'step': 1}) + '\n')
    (vis / 'config.py').write_text(
        f'auto_scale_lr = dict(base_batch_size=256, enable=True)\n'
        f'optim_wrapper = dict(optimizer=dict(type="SGD", lr={config_lr}))\n'
        'train_dataloader = dict(batch_size=4)\n')


def test_logged_runs_are_read_in_order_and_checked(tmp_path):
    """A killed run and its resumed continuation log into two folders; both count. Validation
    rows (no loss) and scalars.json (the same rows again) are left out."""
    _log(tmp_path, '20260101_000000', [dict(loss=5.0, lr=0.003, step=1),
                                       dict(loss=4.0, lr=0.003, step=2),
                                       {'accuracy/top1': 50.0, 'step': 1}])
    _log(tmp_path, '20260101_000100', [dict(loss=3.5, lr=0.003, step=3)])
    assert [r['step'] for r in logged_train_rows(str(tmp_path))] == [1, 2, 3]
    assert_log_trained_stably(str(tmp_path))
    _log(tmp_path, '20260101_000200', [dict(loss=60.0, lr=0.003, step=4)])
    with pytest.raises(AssertionError, match='grew more than 10x'):
        assert_log_trained_stably(str(tmp_path))


def test_logged_lr_above_the_scaled_rate_fails(tmp_path):
    """lr 0.2 is meant for a batch of 256: at a batch of 4 the run may use 0.2 x 4 / 256."""
    _log(tmp_path, '20260101_000000', [dict(loss=5.0, lr=0.2, step=1)])
    with pytest.raises(AssertionError, match='use at most 0.003125'):
        assert_log_trained_stably(str(tmp_path))
