"""Projection of a teacher feature onto the student's feature space."""
from typing import Optional

from mmrazor.models.architectures.connectors.base_connector import BaseConnector
from torch import Tensor, nn

from ...registry import register_model
from ...utils.validation import check_int

__all__ = ['TeacherProjector']


@register_model()
class TeacherProjector(BaseConnector):
    """BatchNorm + 1x1 conv (strided) mapping a teacher feature to the student's shape.

    Used as the target of feature-level FM-KT: the flow's per-step estimates (student channels
    and resolution) are compared with ``TeacherProjector(teacher_feature)``. ``(B, C)``
    vectors are handled as 1x1 maps.

    Args:
        in_channels: teacher channels.
        out_channels: student channels.
        stride: conv stride, to bring a larger teacher map to the student's size.
        init_cfg: mmengine init config.
    """

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        in_channels, out_channels, stride = (
            check_int(value, name, owner='TeacherProjector')
            for name, value in (('in_channels', in_channels), ('out_channels', out_channels),
                                ('stride', stride)))
        self.bn = nn.BatchNorm2d(in_channels)
        self.conv = nn.Conv2d(in_channels, out_channels, 1, stride=stride)

    def forward_train(self, feature: Tensor) -> Tensor:
        """Project ``(B, C_t, H, W)`` -> ``(B, C_s, H / stride, W / stride)`` (or vectors)."""
        if feature.dim() == 2:
            return self.conv(self.bn(feature[:, :, None, None])).flatten(1)
        return self.conv(self.bn(feature))
