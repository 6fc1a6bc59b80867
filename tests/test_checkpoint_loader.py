"""The one checkpoint loader (``fmkt_plugin.utils.checkpoint``) behind the teacher, the tools and
the converter."""
import os

import pytest
import torch

from fmkt_plugin.utils.checkpoint import load_checkpoint
from fmkt_plugin.utils.checkpoint_refusal import CheckpointRefused


class _Exploit:
    def __reduce__(self):
        return (os.system, ('echo pwned',))


def test_loads_a_checkpoint_dict_memory_mapped_or_legacy(tmp_path):
    state = {'w': torch.arange(3.0)}
    zipped, legacy = tmp_path / 'zip.pth', tmp_path / 'legacy.pth'
    torch.save({'state_dict': state, 'meta': {'epoch': 1}}, zipped)
    torch.save({'state_dict': state}, legacy, _use_new_zipfile_serialization=False)
    for path in (zipped, legacy):
        ckpt = load_checkpoint(str(path), 'checkpoint')
        assert torch.equal(ckpt['state_dict']['w'], state['w'])


def test_every_failure_names_the_field_and_the_file(tmp_path):
    with pytest.raises(FileNotFoundError,
                       match='teacher_ckpt: checkpoint file not found: .*no.pth'):
        load_checkpoint(str(tmp_path / 'no.pth'), 'teacher_ckpt')
    (tmp_path / 'empty.pth').write_bytes(b'')
    with pytest.raises(ValueError, match=r'--resume: .*empty.pth is empty \(0 bytes\)'):
        load_checkpoint(str(tmp_path / 'empty.pth'), '--resume')
    torch.save([torch.zeros(1)], tmp_path / 'list.pth')
    with pytest.raises(ValueError, match=r'checkpoint: .*list.pth holds a list, not a '):
        load_checkpoint(str(tmp_path / 'list.pth'), 'checkpoint')
    data = tmp_path / 'good.pth'
    torch.save({'state_dict': {'w': torch.zeros(64)}}, data)
    (tmp_path / 'cut.pth').write_bytes(data.read_bytes()[:100])
    with pytest.raises(RuntimeError, match=r'checkpoint: cannot load .*cut.pth: RuntimeError'):
        load_checkpoint(str(tmp_path / 'cut.pth'), 'checkpoint')
    # a URL where only a local file is taken: a missing file, nothing downloaded
    with pytest.raises(FileNotFoundError, match='checkpoint: checkpoint file not found: https'):
        load_checkpoint('https://example.invalid/x.pth', 'checkpoint', allow_remote=False)


def test_a_code_executing_file_gets_the_shared_refusal(tmp_path):
    evil = tmp_path / 'evil.pth'
    torch.save({'state_dict': {}, 'x': _Exploit()}, evil)
    with pytest.raises(RuntimeError, match=r'checkpoint: cannot load .*evil.pth: refused by the '
                       r'restricted unpickler \(the global .*system') as info:
        load_checkpoint(str(evil), 'checkpoint')
    assert isinstance(info.value.__cause__, CheckpointRefused)
    assert 'weights_only' not in str(info.value)


def test_finite_check_on_request(tmp_path):
    bad = tmp_path / 'nan.pth'
    torch.save({'state_dict': {'a': torch.zeros(2), 'b': torch.tensor([1.0, float('nan')]),
                               'n': torch.zeros((), dtype=torch.long)}}, bad)
    assert 'state_dict' in load_checkpoint(str(bad), 'checkpoint')  # not asked: loaded
    with pytest.raises(ValueError, match=r"teacher_ckpt: the teacher's weights in .*nan.pth are "
                       r'not finite \(NaN/inf values in b\)'):
        load_checkpoint(str(bad), 'teacher_ckpt', finite="the teacher's weights")
    listed = tmp_path / 'listed.pth'
    torch.save({'state_dict': [1]}, listed)
    with pytest.raises(ValueError, match=r'"state_dict" is a list'):
        load_checkpoint(str(listed), 'teacher_ckpt', finite='the weights')


def test_load_torch_file_reads_tensors_with_the_same_checks(tmp_path):
    """The loader of the benchmark's caches: a bare tensor (no checkpoint dict) loads,
    memory-mapped or not; a missing, empty, text or code-executing file is refused by name."""
    from fmkt_plugin.utils.checkpoint import load_torch_file
    path = str(tmp_path / 'logits.pt')
    torch.save(torch.arange(6.0).reshape(2, 3), path)
    for mmap in (True, False):
        assert torch.equal(load_torch_file(path, 'cache', mmap=mmap),
                           torch.arange(6.0).reshape(2, 3))
    with pytest.raises(FileNotFoundError, match='cache: checkpoint file not found'):
        load_torch_file(str(tmp_path / 'none.pt'), 'cache')
    empty = tmp_path / 'empty.pt'
    empty.write_bytes(b'')
    with pytest.raises(ValueError, match='cache: .*empty'):
        load_torch_file(str(empty), 'cache')
    text = tmp_path / 'text.pt'
    text.write_text('hello')
    with pytest.raises(ValueError, match='cache: .*not a PyTorch checkpoint'):
        load_torch_file(str(text), 'cache')
    evil = str(tmp_path / 'evil.pt')
    torch.save({'x': _Exploit()}, evil)
    with pytest.raises(RuntimeError, match='cache: ') as info:
        load_torch_file(evil, 'cache')
    assert isinstance(info.value.__cause__, CheckpointRefused)
