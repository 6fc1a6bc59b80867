"""fmkt_plugin.utils.validation: the shared checks of config values."""
import math

import numpy as np
import pytest
import torch

from fmkt_plugin.utils.validation import check_int, check_number


@pytest.mark.parametrize('value', [1, 8, np.int64(8), np.int32(3), np.uint8(2)])
def test_check_int_accepts_integral_numbers_and_returns_python_int(value):
    out = check_int(value, 'num_steps')
    assert out == int(value) and type(out) is int


@pytest.mark.parametrize('value', [True, False, 8.0, '8', None, [8], torch.tensor(8),
                                   np.float64(8.0), np.bool_(True)])
def test_check_int_refuses_non_integers_naming_field_and_value(value):
    with pytest.raises(ValueError, match=r'num_steps must be an int >= 1, got ') as err:
        check_int(value, 'num_steps')
    assert repr(value) in str(err.value)


def test_check_int_bounds_and_owner():
    assert check_int(0, 'index', min_value=0) == 0
    assert check_int(-5, 'offset', min_value=None) == -5
    assert check_int(1024, 'num_steps', max_value=1024) == 1024
    with pytest.raises(ValueError, match=r'^Conn: num_steps must be an int in \[1, 1024\], '
                                         r'got 1000000000$'):
        check_int(10**9, 'num_steps', max_value=1024, owner='Conn')
    with pytest.raises(ValueError, match=r'hidden_channels must be an int >= 1, got -4'):
        check_int(-4, 'hidden_channels')
    with pytest.raises(ValueError, match=r'levels must be an int <= 3, got 4'):
        check_int(4, 'levels', min_value=None, max_value=3)


@pytest.mark.parametrize('value', [0, 0.5, -2, np.float32(0.25), np.float64(3.0), np.int64(2)])
def test_check_number_accepts_reals_and_returns_float(value):
    out = check_number(value, 'tau')
    assert out == float(value) and type(out) is float


@pytest.mark.parametrize('value', ['0.1', True, None, torch.tensor(1.0), 1 + 2j])
def test_check_number_refuses_non_numbers(value):
    with pytest.raises(ValueError, match=r's_min must be a finite number, got '):
        check_number(value, 's_min')


@pytest.mark.parametrize('value', [float('nan'), float('inf'), -math.inf, np.float64('nan'),
                                   10**400])
def test_check_number_refuses_non_finite(value):
    with pytest.raises(ValueError, match='ce_weight must be a non-negative finite number'):
        check_number(value, 'ce_weight', nonnegative=True)


def test_check_number_sign_and_bounds():
    assert check_number(0, 'w', nonnegative=True) == 0.0
    with pytest.raises(ValueError, match=r'^Loss: loss_weight must be a non-negative finite '
                                         r'number, got -2$'):
        check_number(-2, 'loss_weight', nonnegative=True, owner='Loss')
    with pytest.raises(ValueError, match='tau must be a positive finite number, got 0'):
        check_number(0, 'tau', positive=True)
    with pytest.raises(ValueError, match=r'dirac_ratio must be a finite number in \[0, 1\], '
                                         r'got 1.5'):
        check_number(1.5, 'dirac_ratio', min_value=0, max_value=1)
    assert check_number(float('inf'), 'clip', finite=False, positive=True) == math.inf
    with pytest.raises(ValueError, match='clip must be a positive number, got nan'):
        check_number(float('nan'), 'clip', finite=False, positive=True)


def test_check_loss_settings_reads_weights_and_temperatures():
    from fmkt_plugin.utils.validation import check_loss_settings

    class Loss(torch.nn.Module):
        def __init__(self, **kw):
            super().__init__()
            self.__dict__.update(kw)

    check_loss_settings(Loss(loss_weight=0, tau=2.0, reduction='mean', alpha=np.float32(1)),
                        'metric')
    with pytest.raises(ValueError, match=r'^FMKTLoss: metric.tau must be a positive finite '
                                         r'number, got 0$'):
        check_loss_settings(Loss(tau=0), 'metric', owner='FMKTLoss')
    with pytest.raises(ValueError, match=r'loss.beta must be a non-negative finite number'):
        check_loss_settings(Loss(beta=float('nan')), 'loss')
    with pytest.raises(ValueError, match=r'metric.intra_loss_weight must be a non-negative'):
        check_loss_settings(Loss(intra_loss_weight=-1.0), 'metric')
    check_loss_settings(Loss(tau=torch.tensor(-1.0), use_sigmoid=True), 'x')  # not scalars
