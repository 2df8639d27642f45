"""Single-view prefix slicing (nas.elastic.slicing): same values and gradients as narrow."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch import nn

import nas
from nas.elastic import ElasticConv2d, ElasticDense, ElasticLearnedPositions
from nas.elastic.slicing import fast_slicing, prefix, set_fast_slicing
from nas.errors import ConfigError
from nas.supernet import Supernet

SPACES = {"vit_mini": 10, "gpt_tiny": 256, "llama_tiny": 256}


@pytest.fixture
def fast() -> Iterator[None]:
    previous = set_fast_slicing(True)
    yield
    set_fast_slicing(previous)


def _graph_names(t: torch.Tensor) -> set[str]:
    seen, todo, names = set(), [t.grad_fn], set()
    while todo:
        node = todo.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        names.add(type(node).__name__)
        todo.extend(n for n, _ in node.next_functions)
    return names


@pytest.mark.parametrize(("shape", "size"), [
    ((7, 5), (3, 2)), ((7, 5), (7, 2)), ((4, 3, 6, 6), (2, 3, 6, 6)), ((4, 3, 6), (2, 1, 5)),
    ((9,), (4,)),
])
def test_prefix_matches_narrow_in_values_and_gradients(
    fast: None, shape: tuple[int, ...], size: tuple[int, ...]
) -> None:
    base = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    grads = []
    for mode in (True, False):
        set_fast_slicing(mode)
        t = base.clone().requires_grad_()
        view = prefix(t, size)
        assert view.shape == size
        assert torch.equal(view, base[tuple(slice(0, n) for n in size)])
        loss = (view * torch.arange(view.numel()).view(size)).pow(2).sum()
        loss.backward()
        sliced = sum(n != m for n, m in zip(size, shape))
        if mode and sliced > 1:
            assert "AsStridedBackward0" in _graph_names(loss)
            assert "SliceBackward0" not in _graph_names(loss)
        assert t.grad is not None
        grads.append(t.grad)
    assert torch.equal(grads[0], grads[1])
    assert torch.equal(grads[0][tuple(slice(n, None) for n in size[:1])],
                       torch.zeros_like(grads[0][size[0]:]))


def test_prefix_of_a_whole_tensor_is_the_tensor(fast: None) -> None:
    t = torch.zeros(3, 4)
    assert prefix(t, (3, 4)) is t


def test_prefix_of_a_view_keeps_its_offset_and_strides(fast: None) -> None:
    base = torch.arange(60.0).view(6, 10)
    window = base[1:, 2:]  # offset 12, strides (10, 1)
    assert torch.equal(prefix(window, (3, 4)), base[1:4, 2:6])
    assert torch.equal(prefix(window.t(), (4, 3)), base[1:4, 2:6].t())


def test_prefix_double_backward(fast: None) -> None:
    w = torch.randn(6, 4, requires_grad=True)
    (g,) = torch.autograd.grad((prefix(w, (3, 2)) ** 3).sum(), w, create_graph=True)
    (gg,) = torch.autograd.grad(g.sum(), w)
    expected = torch.zeros(6, 4)
    expected[:3, :2] = 6 * w.detach()[:3, :2]
    assert torch.allclose(gg, expected)


@pytest.mark.parametrize(("size", "match"), [
    ((7, 2), r"prefix size \(7, 2\) does not fit a tensor of \(6, 4\)"),
    ((3,), r"prefix size \(3,\) does not fit a tensor of \(6, 4\)"),
    ((3, -1), r"prefix size \(3, -1\) does not fit"),
])
def test_prefix_rejects_bad_sizes(size: tuple[int, ...], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        prefix(torch.zeros(6, 4), size)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
def test_tracing_and_export_see_narrow(fast: None) -> None:
    fc = ElasticDense(8, 12)
    fc.active_out_features = 5
    x = torch.randn(2, 6)
    graph = torch.jit.trace(fc, (x,), check_trace=False).graph
    kinds = {node.kind() for node in graph.nodes()}
    assert "aten::as_strided" not in kinds and "aten::narrow" in kinds
    program = torch.export.export(fc, (x,))
    targets = {str(node.target) for node in program.graph.nodes}
    assert not any("as_strided" in t for t in targets)
    assert torch.equal(program.module()(x), fc(x))
    assert fast_slicing()


def test_layers_slice_with_one_view(fast: None) -> None:
    conv = ElasticConv2d(6, 8, kernel_size=3)
    conv.active_out_channels = 5
    pos = ElasticLearnedPositions(16, 8)
    dense = ElasticDense(8, 12)
    dense.active_out_features = 5
    for y in (conv(torch.randn(1, 4, 5, 5)), pos(torch.randn(1, 7, 6))):
        names = _graph_names(y)
        assert "AsStridedBackward0" in names and "SliceBackward0" not in names
    # the weight in one view; the bias (one sliced dimension) stays a narrow
    assert {"AsStridedBackward0", "SliceBackward0"} <= _graph_names(dense(torch.randn(2, 6)))


def _input(supernet: Supernet) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    if supernet.space.meta["family"] == "vit":
        r = int(supernet.space.meta["resolution"])
        return torch.randn(3, 3, r, r, generator=gen)
    return torch.randint(0, supernet.num_classes, (2, 12), generator=gen)


def _step(model: nn.Module, x: torch.Tensor, fast: bool
          ) -> tuple[torch.Tensor, dict[str, torch.Tensor | None]]:
    previous = set_fast_slicing(fast)
    try:
        model.zero_grad(set_to_none=True)
        out = model(x)
        (out * torch.randn(out.shape, generator=torch.Generator().manual_seed(1))).sum().backward()
    finally:
        set_fast_slicing(previous)
    grads = {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
    return out.detach(), grads


@pytest.mark.parametrize("name", list(SPACES))
def test_supernet_training_step_equals_the_narrow_reference_and_extract(name: str) -> None:
    """Random archs (and the smallest): the output and every parameter gradient of the
    single-view path equal the chained-narrow reference bit for bit; the extracted subnet
    computes the same output and the same gradients on its (sliced) weights."""
    torch.manual_seed(0)
    supernet = nas.create_supernet(name, num_classes=SPACES[name]).train()
    x = _input(supernet)
    archs = [supernet.space.smallest(),
             *supernet.space.sample_many(3, np.random.default_rng(0))]
    for arch in archs:
        supernet.set_active(arch)
        out_fast, grads_fast = _step(supernet, x, fast=True)
        out_ref, grads_ref = _step(supernet, x, fast=False)
        assert torch.equal(out_fast, out_ref)
        assert grads_fast.keys() == grads_ref.keys()
        for key, g in grads_fast.items():
            ref = grads_ref[key]
            assert (g is None) == (ref is None), key
            assert g is None or ref is None or torch.equal(g, ref), key
        static = supernet.extract(arch).train()
        out_static, grads_static = _step(static, x, fast=True)
        assert float((out_static - out_fast).abs().max()) <= 1e-5
        shared = [k for k, g in grads_static.items() if g is not None and k in grads_fast]
        assert len(shared) >= len(grads_static) // 2  # the same parameter names mostly
        for key in shared:
            g_static, g_full = grads_static[key], grads_fast[key]
            assert g_static is not None and g_full is not None
            assert torch.allclose(prefix(g_full, tuple(g_static.shape)), g_static,
                                  rtol=1e-4, atol=1e-6), key
