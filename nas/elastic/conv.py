"""Elastic convolutions: weights at the largest size, the active part sliced in ``forward``.

Two layers:

* :class:`ElasticConv2d` — a (grouped-1) convolution whose input and output channel counts
  shrink: the active filter is ``weight[:out, :in]``. Input channels follow the input tensor
  (as in Once-for-All), output channels follow ``active_out_channels``.
* :class:`ElasticDepthwiseConv2d` — a depthwise convolution whose channel count follows the
  input and whose kernel shrinks 7 → 5 → 3 through Once-for-All's learned kernel transformation
  matrices (``KERNEL_TRANSFORM_MODE=1``): the centre of the larger kernel, multiplied by a
  per-layer ``k²×k²`` matrix initialised to the identity.

Both subclass their ``torch.nn`` counterpart (so ``isinstance(m, nn.Conv2d)`` holds and weight
initialisers apply) and ``export()`` a plain ``nn.Conv2d`` holding a copy of the active weights.

Example:
    >>> conv = ElasticConv2d(16, 32, kernel_size=1)
    >>> conv.active_out_channels = 24
    >>> conv(torch.randn(2, 8, 5, 5)).shape      # input channels follow the input
    torch.Size([2, 24, 5, 5])
    >>> conv.active_in_channels = 8
    >>> static = conv.export()                   # nn.Conv2d(8, 24, 1)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from nas.elastic.slicing import prefix
from nas.errors import ConfigError

M = TypeVar("M", bound=nn.Module)


class _SkipInit(TorchFunctionMode):
    """Turns ``torch.nn.init`` calls and in-place fills into no-ops (construction only)."""

    _FILLS = frozenset({"uniform_", "normal_", "zero_", "fill_", "kaiming_uniform_"})

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        if getattr(func, "__module__", "") == "torch.nn.init" or (
            getattr(func, "__name__", "") in self._FILLS
        ):
            return args[0] if args else kwargs["tensor"]  # type: ignore[index]
        return func(*args, **(kwargs or {}))


def build_uninitialized(factory: Callable[[], M], device: torch.device) -> M:
    """``factory()`` moved to ``device``, skipping its random weight initialisation.

    Exports overwrite every parameter and buffer, so drawing random initial values (most of
    an extract's time otherwise) is wasted work.
    """
    with _SkipInit():
        module = factory()
    return module if device.type == "cpu" else module.to(device)


def check_width(name: str, value: int, maximum: int) -> int:
    """``value`` if it is an int in ``1..maximum``, else a ``ValueError`` naming ``name``."""
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= maximum:
        raise ConfigError(f"{name} must be an int in 1..{maximum}, got {value!r}")
    return value


class ElasticConv2d(nn.Conv2d):
    """A convolution whose input/output channels are a prefix of its largest weight.

    Args:
        max_in_channels: input channels of the largest configuration.
        max_out_channels: output channels of the largest configuration.
        kernel_size: square kernel size (odd); padding is ``kernel_size // 2``.
        stride: convolution stride.
        bias: whether the convolution has a bias (sliced with the output channels).

    Attributes:
        active_out_channels: output channels ``forward`` computes (default: the maximum).
        active_in_channels: input channels :meth:`export` uses (``forward`` takes them from
            the input tensor).
    """

    def __init__(
        self,
        max_in_channels: int,
        max_out_channels: int,
        kernel_size: int = 1,
        stride: int = 1,
        *,
        bias: bool = False,
    ) -> None:
        super().__init__(
            max_in_channels,
            max_out_channels,
            kernel_size,
            stride=stride,
            padding=kernel_size // 2,
            bias=bias,
        )
        self.max_in_channels = max_in_channels
        self.max_out_channels = max_out_channels
        self._active_out = max_out_channels
        self._active_in = max_in_channels

    @property
    def active_out_channels(self) -> int:
        """Output channels of the active configuration."""
        return self._active_out

    @active_out_channels.setter
    def active_out_channels(self, value: int) -> None:
        self._active_out = check_width("active_out_channels", value, self.max_out_channels)

    @property
    def active_in_channels(self) -> int:
        """Input channels of the active configuration (used by :meth:`export`)."""
        return self._active_in

    @active_in_channels.setter
    def active_in_channels(self, value: int) -> None:
        self._active_in = check_width("active_in_channels", value, self.max_in_channels)

    def active_weight(self, in_channels: int | None = None) -> torch.Tensor:
        """The active filter ``weight[:out, :in]`` (one view, :func:`nas.elastic.slicing.prefix`;
        no copy when nothing is sliced)."""
        cin = self._active_in if in_channels is None else in_channels
        weight = self.weight
        return prefix(weight, (self._active_out, cin, *weight.shape[2:]))

    def active_bias(self) -> torch.Tensor | None:
        """The active bias (``None`` without one)."""
        if self.bias is None or self._active_out == self.max_out_channels:
            return self.bias
        return self.bias.narrow(0, 0, self._active_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        cin = x.shape[1]
        if cin > self.max_in_channels:
            raise ConfigError(
                f"input has {cin} channels, more than max_in_channels={self.max_in_channels}"
            )
        return F.conv2d(
            x, self.active_weight(cin), self.active_bias(), self.stride, self.padding
        )

    def export(self) -> nn.Conv2d:
        """A plain ``nn.Conv2d(active_in, active_out)`` holding a copy of the active weights."""
        static = build_uninitialized(
            lambda: nn.Conv2d(
                self._active_in,
                self._active_out,
                self.kernel_size[0],
                stride=self.stride[0],
                padding=self.kernel_size[0] // 2,
                bias=self.bias is not None,
                dtype=self.weight.dtype,
            ),
            self.weight.device,
        )
        with torch.no_grad():
            static.weight.copy_(self.active_weight())
            bias = self.active_bias()
            if bias is not None and static.bias is not None:
                static.bias.copy_(bias)
        return static

    def extra_repr(self) -> str:
        return (
            f"{super().extra_repr()}, active_in={self._active_in}, "
            f"active_out={self._active_out}"
        )


class ElasticDepthwiseConv2d(nn.Conv2d):
    """A depthwise convolution with elastic channels and an elastic kernel size.

    The kernel of size ``k`` is derived from the largest one step by step (7 → 5 → 3): take the
    centre ``k×k`` of the previous kernel and multiply its flattened form by the learned matrix
    ``<prev>to<k>_matrix`` (``k²×k²``, initialised to the identity, so an untrained layer simply
    crops the centre). With ``transform=False`` the centre is cropped without matrices.

    Args:
        max_channels: channels of the largest configuration.
        kernel_sizes: the allowed kernel sizes (odd), e.g. ``(3, 5, 7)``.
        stride: convolution stride.
        transform: learn the kernel transformation matrices (Once-for-All's default).

    Attributes:
        active_kernel_size: the kernel size ``forward`` uses (default: the largest).
        active_channels: channels :meth:`export` uses (``forward`` follows the input).

    Example:
        >>> dw = ElasticDepthwiseConv2d(32, (3, 5, 7), stride=2)
        >>> dw.active_kernel_size = 5
        >>> dw(torch.randn(1, 24, 8, 8)).shape
        torch.Size([1, 24, 4, 4])
    """

    def __init__(
        self,
        max_channels: int,
        kernel_sizes: Sequence[int],
        stride: int = 1,
        *,
        transform: bool = True,
    ) -> None:
        sizes = sorted(set(int(k) for k in kernel_sizes))
        if not sizes or any(k < 1 or k % 2 == 0 for k in sizes):
            raise ConfigError(f"kernel_sizes must be odd positive ints, got {list(kernel_sizes)}")
        super().__init__(
            max_channels,
            max_channels,
            sizes[-1],
            stride=stride,
            padding=sizes[-1] // 2,
            groups=max_channels,
            bias=False,
        )
        self.max_channels = max_channels
        self.kernel_sizes: tuple[int, ...] = tuple(sizes)
        self.transform = transform
        if transform:
            for small, large in itertools.pairwise(sizes):
                self.register_parameter(
                    self._matrix_name(large, small), nn.Parameter(torch.eye(small * small))
                )
        self._active_kernel = sizes[-1]
        self._active_channels = max_channels

    @staticmethod
    def _matrix_name(large: int, small: int) -> str:
        # OFA's parameter names, so its checkpoints map one to one
        return f"{large}to{small}_matrix"

    @property
    def active_kernel_size(self) -> int:
        """The kernel size of the active configuration."""
        return self._active_kernel

    @active_kernel_size.setter
    def active_kernel_size(self, value: int) -> None:
        if value not in self.kernel_sizes:
            raise ConfigError(
                f"active_kernel_size must be one of {list(self.kernel_sizes)}, got {value!r}"
            )
        self._active_kernel = value

    @property
    def active_channels(self) -> int:
        """Channels of the active configuration (used by :meth:`export`)."""
        return self._active_channels

    @active_channels.setter
    def active_channels(self, value: int) -> None:
        self._active_channels = check_width("active_channels", value, self.max_channels)

    def active_weight(
        self, channels: int | None = None, kernel_size: int | None = None
    ) -> torch.Tensor:
        """The active ``(channels, 1, k, k)`` filter, transformed from the largest kernel."""
        c = self._active_channels if channels is None else channels
        k = self._active_kernel if kernel_size is None else kernel_size
        weight = self.weight if c == self.max_channels else self.weight.narrow(0, 0, c)
        src = self.kernel_sizes[-1]
        if k == src:
            return weight
        if not self.transform:
            start = (src - k) // 2
            return weight[:, :, start : start + k, start : start + k]
        for target in reversed(self.kernel_sizes):
            if target >= src:
                continue
            if target < k:
                break
            start = (src - target) // 2
            centre = weight[:, :, start : start + target, start : start + target]
            matrix = getattr(self, self._matrix_name(src, target))
            # (c, t*t) @ M^T, as OFA's F.linear(filter, matrix)
            weight = F.linear(centre.reshape(c, target * target), matrix).view(
                c, 1, target, target
            )
            src = target
        return weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = x.shape[1]
        if c > self.max_channels:
            raise ConfigError(f"input has {c} channels, more than max_channels={self.max_channels}")
        k = self._active_kernel
        return F.conv2d(x, self.active_weight(c, k), None, self.stride, k // 2, 1, c)

    def export(self) -> nn.Conv2d:
        """A plain depthwise ``nn.Conv2d`` with the active (transformed) kernel copied in."""
        c, k = self._active_channels, self._active_kernel
        static = build_uninitialized(
            lambda: nn.Conv2d(
                c, c, k, stride=self.stride[0], padding=k // 2, groups=c, bias=False,
                dtype=self.weight.dtype,
            ),
            self.weight.device,
        )
        with torch.no_grad():
            static.weight.copy_(self.active_weight())
        return static

    def extra_repr(self) -> str:
        return (
            f"{self.max_channels}, kernel_sizes={list(self.kernel_sizes)}, stride={self.stride}, "
            f"active_channels={self._active_channels}, active_kernel={self._active_kernel}"
        )
