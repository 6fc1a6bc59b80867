"""Benchmark-only modules: a small BN+ReLU CNN backbone and a cached-output teacher.

They are registered into the OpenMMLab registries so the benchmark configs name them exactly as
cluster configs name ResNets and teachers:

- ``FMNISTConvNet`` (mmpretrain ``MODELS``): plain conv stages, each ``conv3x3 -> BN -> ReLU``.
- ``CachedLogitsTeacher`` (MMRazor ``MODELS``): a stand-in for a frozen teacher whose logits were
  computed once for every training image in both flip states. Its ``head.fc`` returns the cached
  logits, so the same ``ModuleOutputs(source='head.fc')`` recorder as for a live teacher records
  them; what each method computes is unchanged, only the teacher's forward pass is skipped.
"""
from typing import List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModel
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmrazor.registry import MODELS as RAZOR_MODELS
from torch import Tensor, nn

__all__ = ['FMNISTConvNet', 'CachedLogitsTeacher']


@PRETRAIN_MODELS.register_module(force=True)
class FMNISTConvNet(BaseBackbone):
    """Small plain CNN for 28x28 grey images: stages of ``conv3x3 -> BN -> ReLU``.

    Args:
        widths: output channels of each stage.
        strides: stride of the first conv of each stage.
        convs_per_stage: number of convs in every stage (the first one carries the stride).
        in_channels: image channels.
        out_indices: stages whose output maps are returned.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 widths: Sequence[int] = (8, 8, 16, 32),
                 strides: Sequence[int] = (2, 1, 2, 1),
                 convs_per_stage: int = 1,
                 in_channels: int = 1,
                 out_indices: Sequence[int] = (-1, ),
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if len(widths) != len(strides):
            raise ValueError(f'FMNISTConvNet: widths {widths} and strides {strides} differ in '
                             'length')
        self.stages = nn.ModuleList()
        cin = in_channels
        for width, stride in zip(widths, strides):
            layers: List[nn.Module] = []
            for k in range(convs_per_stage):
                layers += [
                    nn.Conv2d(cin, width, 3, stride if k == 0 else 1, 1, bias=False),
                    nn.BatchNorm2d(width),
                    nn.ReLU(inplace=True),
                ]
                cin = width
            self.stages.append(nn.Sequential(*layers))
        self.out_indices = tuple(i % len(widths) for i in out_indices)
        self.out_channels = cin
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')

    def forward(self, x: Tensor) -> Tuple[Tensor, ...]:
        outs = []
        for i, stage in enumerate(self.stages):
            x = stage(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)


class _CachedHead(nn.Module):
    """Holds ``fc``, an identity whose output (the cached logits) recorders can hook."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Identity()


@RAZOR_MODELS.register_module(force=True)
class CachedLogitsTeacher(BaseModel):
    """Frozen teacher served from precomputed logits.

    The cache holds the teacher's eval-mode logits for every training image in both horizontal
    flip states, ``(2, num_images, num_classes)`` (index 0: original, 1: flipped). The batch's
    ``data_samples`` carry ``sample_idx`` (row in the cache) and ``flip`` in their metainfo.

    Args:
        cache_file: a ``torch.save``-d tensor (or a dict with key ``'logits'``).
        data_preprocessor: unused (inputs are not read), kept for the BaseModel signature.
    """

    def __init__(self, cache_file: str, data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        logits = torch.load(cache_file, map_location='cpu', weights_only=True)
        if isinstance(logits, dict):
            logits = logits['logits']
        if logits.dim() != 3 or logits.shape[0] != 2:
            raise ValueError(f'CachedLogitsTeacher: {cache_file} must hold (2, N, K) logits, '
                             f'got {tuple(logits.shape)}')
        self.register_buffer('logits', logits.float(), persistent=False)
        self.head = _CachedHead()
        self.cache_file = cache_file

    def lookup(self, data_samples: Sequence) -> Tensor:
        """Cached logits ``(B, K)`` of the samples of a batch."""
        dev = self.logits.device
        idx = torch.tensor([s.sample_idx for s in data_samples], dtype=torch.long, device=dev)
        flip = torch.tensor([int(s.flip) for s in data_samples], dtype=torch.long, device=dev)
        return self.logits[flip, idx]

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        if data_samples is None:
            raise ValueError('CachedLogitsTeacher needs data_samples with sample_idx and flip')
        logits = self.head.fc(self.lookup(data_samples).to(inputs.device))
        if mode == 'loss':
            return {}
        return logits
