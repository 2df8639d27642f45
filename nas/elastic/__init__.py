"""Elastic layers: weights at the largest size, sliced in ``forward``; ``export()`` → static.

Every layer keeps its active configuration on the instance (no class-level flags) and
``export()`` returns a plain ``torch.nn`` module holding a copy of the active weights.

* :class:`ElasticConv2d` — input/output channel slicing (``weight[:out, :in]``).
* :class:`ElasticDepthwiseConv2d` — elastic channels and kernel 7→5→3 (OFA's learned
  kernel transformation matrices).
* :class:`ElasticBatchNorm2d` — statistics and affine parameters of the active channels.
* :class:`ElasticLinear` — input-feature slicing.
* :class:`ElasticSqueezeExcite`, :class:`ElasticMBConv` — MobileNetV3 building blocks.
* :class:`ElasticDense` — input- and output-feature slicing (transformer projections).
* :class:`ElasticEmbedding`, :class:`ElasticPatchEmbed`, :class:`ElasticLearnedPositions` —
  token and patch embeddings and learned positions of elastic width; :func:`rotary_cos_sin`,
  :func:`apply_rotary` — rotary embeddings.
* :class:`ElasticSelfAttention` — multi-head / grouped-query attention, elastic query groups.
* :class:`ElasticMLP`, :class:`ElasticSwiGLU` — MLPs with an elastic hidden width.
* :class:`ElasticLayerNorm`, :class:`ElasticRMSNorm` — norms over the active width.
* :class:`ElasticTransformerBlock`, :class:`ElasticDepth` — a pre-norm block; the first k
  layers of a stack.
* :mod:`nas.elastic.slicing` — :func:`~nas.elastic.slicing.prefix`, the active part of a
  weight as one view (one autograd node) however many dimensions are sliced.

Example:
    >>> from nas.elastic import ElasticConv2d, ElasticBatchNorm2d
    >>> conv, bn = ElasticConv2d(16, 64), ElasticBatchNorm2d(64)
    >>> conv.active_out_channels = 48
    >>> y = bn(conv(torch.randn(2, 16, 8, 8)))     # 48 channels
"""

from nas.elastic.attention import ElasticSelfAttention, attend
from nas.elastic.batchnorm import ElasticBatchNorm2d
from nas.elastic.conv import ElasticConv2d, ElasticDepthwiseConv2d
from nas.elastic.dense import ElasticDense
from nas.elastic.depth import ElasticDepth
from nas.elastic.embedding import ElasticEmbedding
from nas.elastic.linear import ElasticLinear
from nas.elastic.mbconv import ElasticMBConv, mid_channels
from nas.elastic.mlp import ElasticMLP, ElasticSwiGLU, gelu_module
from nas.elastic.norm import ElasticLayerNorm, ElasticRMSNorm
from nas.elastic.patch_embed import ElasticPatchEmbed
from nas.elastic.positions import ElasticLearnedPositions, apply_rotary, rotary_cos_sin
from nas.elastic.squeeze_excite import ElasticSqueezeExcite
from nas.elastic.transformer_block import ElasticTransformerBlock
from nas.shapes import mlp_hidden

__all__ = [
    "ElasticBatchNorm2d",
    "ElasticConv2d",
    "ElasticDense",
    "ElasticDepth",
    "ElasticDepthwiseConv2d",
    "ElasticEmbedding",
    "ElasticLayerNorm",
    "ElasticLearnedPositions",
    "ElasticLinear",
    "ElasticMBConv",
    "ElasticMLP",
    "ElasticPatchEmbed",
    "ElasticRMSNorm",
    "ElasticSelfAttention",
    "ElasticSqueezeExcite",
    "ElasticSwiGLU",
    "ElasticTransformerBlock",
    "apply_rotary",
    "attend",
    "gelu_module",
    "mid_channels",
    "mlp_hidden",
    "rotary_cos_sin",
]
