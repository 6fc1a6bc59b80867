"""The benchmark's in-memory loader: the batches it serves."""
import torch

from benchmarks.classification.data import Split, TensorLoader


def _split(n: int = 50) -> Split:
    gen = torch.Generator().manual_seed(0)
    return Split(torch.randint(0, 256, (n, 1, 28, 28), dtype=torch.uint8, generator=gen),
                 torch.randint(0, 10, (n, ), generator=gen), 'train')


def test_data_samples_hold_what_the_models_read():
    """The directly set fields equal what ``DataSample(metainfo=...)`` + ``set_gt_label`` give,
    and mmpretrain's head collects the batch's labels from them as from its own samples."""
    from mmpretrain.structures import DataSample
    split = _split()
    batch = next(iter(TensorLoader(split, 16, shuffle=True, flip=True, seed=1)))
    assert 0 < int(batch['flips'].sum()) < 16
    for sample, idx, flip in zip(batch['data_samples'], batch['indices'], batch['flips']):
        ref = DataSample(metainfo=dict(sample_idx=int(idx), flip=bool(flip)))
        ref.set_gt_label(int(split.labels[idx]))
        assert sample.metainfo == ref.metainfo
        assert torch.equal(sample.gt_label, ref.gt_label)
        assert sample.gt_label.dtype == ref.gt_label.dtype == torch.int64
        assert set(sample.keys()) == set(ref.keys())
    labels = torch.cat([s.gt_label for s in batch['data_samples']])
    assert torch.equal(labels, split.labels[batch['indices']])
    # flipped images are served flipped
    f = int(torch.nonzero(batch['flips'])[0])
    assert torch.equal(batch['inputs'][f], split.images[batch['indices'][f]].flip(-1))
