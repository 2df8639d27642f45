"""Elastic layers: weights at the largest size, sliced in ``forward``; ``export()`` → static.

Every layer keeps its active configuration on the instance (no class-level flags) and
``export()`` returns a plain ``torch.nn`` module holding a copy of the active weights.

* :class:`ElasticConv2d` — input/output channel slicing (``weight[:out, :in]``).
* :class:`ElasticDepthwiseConv2d` — elastic channels and kernel 7→5→3 (OFA's learned
  kernel transformation matrices).
* :class:`ElasticBatchNorm2d` — statistics and affine parameters of the active channels.
* :class:`ElasticLinear` — input-feature slicing.
* :class:`ElasticSqueezeExcite`, :class:`ElasticMBConv` — MobileNetV3 building blocks.

Example:
    >>> from nas.elastic import ElasticConv2d, ElasticBatchNorm2d
    >>> conv, bn = ElasticConv2d(16, 64), ElasticBatchNorm2d(64)
    >>> conv.active_out_channels = 48
    >>> y = bn(conv(torch.randn(2, 16, 8, 8)))     # 48 channels
"""

from nas.elastic.batchnorm import ElasticBatchNorm2d
from nas.elastic.conv import ElasticConv2d, ElasticDepthwiseConv2d
from nas.elastic.linear import ElasticLinear
from nas.elastic.mbconv import ElasticMBConv, mid_channels
from nas.elastic.squeeze_excite import ElasticSqueezeExcite

__all__ = [
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticDepthwiseConv2d",
    "ElasticLinear",
    "ElasticMBConv",
    "ElasticSqueezeExcite",
    "mid_channels",
]
