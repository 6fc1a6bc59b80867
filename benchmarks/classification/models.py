"""Benchmark-only modules, registered so that the configs name them as cluster configs name
ResNets and teachers: ``FMNISTConvNet`` (mmpretrain), a small BN+ReLU CNN, and
``CachedLogitsTeacher`` (MMRazor), a frozen teacher served from its cached outputs.
"""
from typing import Dict, List, Optional, Sequence, Tuple

import torch
from mmengine.model import BaseModel
from mmpretrain.models.backbones.base_backbone import BaseBackbone
from mmpretrain.registry import MODELS as PRETRAIN_MODELS
from mmrazor.registry import MODELS as RAZOR_MODELS
from torch import Tensor, nn

from fmkt_plugin.utils.checkpoint import load_torch_file

__all__ = ['FMNISTConvNet', 'CachedLogitsTeacher']


@PRETRAIN_MODELS.register_module(force=True)
class FMNISTConvNet(BaseBackbone):
    """Small plain CNN for 28x28 grey images: stages of ``convs_per_stage`` x ``conv3x3 -> BN
    -> ReLU`` of ``widths`` channels (the first conv of a stage with its ``strides``); returns
    the maps of the stages ``out_indices``."""

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


def _identity_at(root: nn.Module, path: str) -> nn.Module:
    """An ``nn.Identity`` added to ``root`` at the dotted ``path`` (plain modules created on
    the way), so that a recorder of ``path`` hooks what it is called with."""
    parts = path.split('.')
    node = root
    for part in parts[:-1]:
        if not hasattr(node, part):
            node.add_module(part, nn.Module())
        node = getattr(node, part)
    if hasattr(node, parts[-1]):
        raise ValueError(f'CachedLogitsTeacher: {path!r} is served twice')
    node.add_module(parts[-1], nn.Identity())
    return getattr(node, parts[-1])


def _load_cache(path: str, what: str, mmap: bool = False) -> Tensor:
    """A cached ``(2, N, ...)`` tensor (index 0: original images, 1: flipped)."""
    value = load_torch_file(path, f'CachedLogitsTeacher {what}', mmap=mmap)
    if isinstance(value, dict):
        value = value[what]
    if not isinstance(value, Tensor) or value.dim() < 3 or value.shape[0] != 2:
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f'CachedLogitsTeacher: {path} must hold (2, N, ...) {what} (both flip '
                         f'states of every image), got {shape}')
    return value


def _check_rows(path: str, what: str, value, rows: Tensor, num_images: int,
                cache_file: str) -> None:
    if not (isinstance(value, Tensor) and value.dim() >= 3 and value.shape[0] == 2
            and value.shape[1] == len(rows) and (len(rows) == 0 or (
                int(rows.min()) >= 0 and int(rows.max()) < num_images))):
        shape = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
        raise ValueError(f'CachedLogitsTeacher: {path} must hold (2, R, ...) {what} of R image '
                         f'rows among the N={num_images} images of {cache_file}, got {shape}')


def _load_maps(path: str, num_images: int, cache_file: str,
               last_stage: str) -> Tuple[Dict[str, Tensor], Tensor]:
    """The cached outputs by module ``{source: (2, R, ...)}`` and the image rows ``(R,)`` they
    are of: a features file names its modules; a maps file holds the last stage's map
    (``last_stage``), ``(2, R, C, H, W)``."""
    value = load_torch_file(path, 'CachedLogitsTeacher maps_file')
    if isinstance(value, dict) and 'features' in value:
        features, rows = value['features'], value.get('rows')
        if not isinstance(features, dict) or not features or not isinstance(rows, Tensor):
            raise ValueError(f'CachedLogitsTeacher: {path} must hold features={{module: '
                             '(2, R, ...) outputs}} and rows=(R,) image rows')
    else:
        if isinstance(value, dict) and 'rows' in value:
            maps, rows = value['maps'], value['rows']
        else:  # the full layout (a tensor, or a dict of one): every image's row
            maps = value.get('maps') if isinstance(value, dict) else value
            rows = torch.arange(maps.shape[1] if isinstance(maps, Tensor) and maps.dim() == 5
                                else 0)
        if isinstance(maps, Tensor) and maps.dim() != 5:
            raise ValueError(f'CachedLogitsTeacher: {path} must hold (2, R, C, H, W) maps, got '
                             f'{tuple(maps.shape)}')
        features = {last_stage: maps}
    for source, tensor in features.items():
        _check_rows(path, f'outputs of {source}', tensor, rows, num_images, cache_file)
    return features, rows.long()


@RAZOR_MODELS.register_module(force=True)
class CachedLogitsTeacher(BaseModel):
    """Frozen teacher served from precomputed outputs.

    The cache holds the teacher's eval-mode logits for every training image in both horizontal
    flip states, ``(2, num_images, num_classes)`` (index 0: original, 1: flipped), and
    optionally outputs of its modules on the training images (``maps_file``, stored in fp16 and
    read memory-mapped: a 60k-image cache of a 128-channel 7x7 map is 1.5 GB): either its
    last-stage maps, ``dict(maps=(2, R, C, H, W), rows=(R,))`` (or a full ``(2, num_images, C,
    H, W)`` tensor), served at ``backbone.stages.<num_stages - 1>``, or the outputs of named
    modules, ``dict(features={module: (2, R, ...)}, rows=(R,))`` (a ViT's token layers),
    served at those modules. The batch's ``data_samples`` carry ``sample_idx`` (row in the
    cache) and ``flip`` in their metainfo. Recorders of ``logits_at`` get the logits, recorders
    of a served module its outputs, exactly where a live teacher's outputs would be recorded.

    Args:
        cache_file: ``torch.save``-d logits (or a dict with key ``'logits'``).
        maps_file: ``torch.save``-d maps or features (above).
        num_stages: the cached CNN teacher's stages (the maps are the last one's).
        logits_at: the module whose output the logits are (``head.fc`` of a linear head,
            ``head.layers.head`` of a ViT's head).
        data_preprocessor: as every model's.
    """

    def __init__(self, cache_file: str, maps_file: Optional[str] = None, num_stages: int = 4,
                 logits_at: str = 'head.fc', data_preprocessor: Optional[dict] = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor)
        logits = _load_cache(cache_file, 'logits')
        self.register_buffer('logits', logits.float(), persistent=False)
        self._logits_out = _identity_at(self, logits_at)
        self.cache_file = cache_file
        self.maps_file = maps_file
        # not buffers: moving the module must not copy gigabytes
        self.features: Dict[str, Tensor] = {}
        self._served: Dict[str, nn.Module] = {}
        self._last_stage = f'backbone.stages.{num_stages - 1}'
        if maps_file:
            self.features, rows = _load_maps(maps_file, logits.shape[1], cache_file,
                                             self._last_stage)
            # image row -> position in the maps file (-1: not cached)
            self._map_pos = torch.full((logits.shape[1], ), -1, dtype=torch.long)
            self._map_pos[rows] = torch.arange(len(rows))
            self._served = {src: _identity_at(self, src) for src in self.features}

    @property
    def maps(self) -> Optional[Tensor]:
        """The cached last-stage maps (None without a maps file of that layout)."""
        return self.features.get(self._last_stage)

    def _rows(self, data_samples: Sequence, device) -> Tuple[Tensor, Tensor]:
        idx = torch.tensor([s.sample_idx for s in data_samples], dtype=torch.long, device=device)
        flip = torch.tensor([int(s.flip) for s in data_samples], dtype=torch.long, device=device)
        return flip, idx

    def lookup(self, data_samples: Sequence) -> Tensor:
        """Cached logits ``(B, K)`` of the samples of a batch."""
        flip, idx = self._rows(data_samples, self.logits.device)
        return self.logits[flip, idx]

    def lookup_features(self, data_samples: Sequence, source: str) -> Tensor:
        """Cached outputs of module ``source`` (float32) of the samples of a batch."""
        if source not in self.features:
            raise ValueError(f'CachedLogitsTeacher: {self.maps_file or "no maps_file"} serves '
                             f'no outputs of {source!r} (it serves {sorted(self.features)})')
        flip, idx = self._rows(data_samples, 'cpu')
        pos = self._map_pos[idx]
        if bool((pos < 0).any()):
            raise ValueError(f'CachedLogitsTeacher: {self.maps_file} holds no maps of images '
                             f'{idx[pos < 0].tolist()}')
        return self.features[source][flip, pos].float()

    def lookup_maps(self, data_samples: Sequence) -> Tensor:
        """Cached last-stage maps ``(B, C, H, W)`` (float32) of the samples of a batch."""
        if self.maps is None:
            raise ValueError('CachedLogitsTeacher: no maps_file was given')
        return self.lookup_features(data_samples, self._last_stage)

    def forward(self, inputs: Tensor, data_samples: Optional[list] = None,
                mode: str = 'tensor'):
        if data_samples is None:
            raise ValueError('CachedLogitsTeacher needs data_samples with sample_idx and flip')
        for source, module in self._served.items():
            module(self.lookup_features(data_samples, source).to(inputs.device))
        logits = self._logits_out(self.lookup(data_samples).to(inputs.device))
        if mode == 'loss':
            return {}
        return logits
