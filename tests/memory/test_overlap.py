"""Overlapping a convolution's output over its dying input (kwscc.memory.planner, backends/cmsis_nn raster_overlap).

The delta the backend gives is checked by running a convolution the way arm_convolve_s8 does (windows of
one to four output pixels read in raster order, then written) inside one byte array where the output starts
delta bytes before the input: the result must equal the convolution of untouched input. The planner must
place the two that way, and the cmsis-nn backend must refuse the kernels that do not run in raster order."""
from __future__ import annotations

import numpy as np
import pytest

from kwscc.backends.cmsis_nn.kernels import KernelCall, raster_overlap
from kwscc.ir import Graph, Node, Tensor
from kwscc.memory.planner import plan_memory


def conv_call(h, w, c, oc, k, stride, pad, groups=1, function="arm_convolve_wrapper_s8") -> KernelCall:
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    params = {"input_dims": {"n": 1, "h": h, "w": w, "c": c}, "filter_dims": {"n": oc, "h": k, "w": k, "c": c // groups},
              "output_dims": {"n": 1, "h": oh, "w": ow, "c": oc}, "stride": (stride, stride), "padding": (pad, pad),
              "dilation": (1, 1), "split": None}
    return KernelCall(Node("conv", "Conv", ["x", "w"], ["y"]), function, "ops/conv.c.j2", params, {})


def run_raster(x, weights, stride, pad, delta, pixels_per_step):
    """Conv of x [H, W, C] by weights [OC, K, K, C] in one array: output at 0, input at delta."""
    h, w, c = x.shape
    oc, k = weights.shape[0], weights.shape[1]
    oh, ow = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
    arena = np.zeros(max(delta + x.size, oh * ow * oc), np.int64)
    arena[delta:delta + x.size] = x.reshape(-1)
    pixels = [(oy, ox) for oy in range(oh) for ox in range(ow)]
    for first in range(0, len(pixels), pixels_per_step):
        batch = pixels[first:first + pixels_per_step]
        windows = []
        for oy, ox in batch:  # read every window of the batch first, as the im2col does
            view = arena[delta:delta + x.size].reshape(h, w, c)
            padded = np.zeros((k, k, c), np.int64)
            for i in range(k):
                for j in range(k):
                    y, xx = oy * stride - pad + i, ox * stride - pad + j
                    if 0 <= y < h and 0 <= xx < w:
                        padded[i, j] = view[y, xx]
            windows.append(padded)
        for (oy, ox), win in zip(batch, windows):
            at = (oy * ow + ox) * oc
            arena[at:at + oc] = weights.reshape(oc, -1) @ win.reshape(-1)
    return arena[:oh * ow * oc].reshape(oh, ow, oc)


CASES = [(12, 10, 4, 4, 3, 1, 1), (12, 10, 4, 8, 3, 1, 1), (12, 10, 8, 2, 3, 1, 1), (13, 11, 4, 8, 3, 2, 1),
         (9, 9, 3, 6, 5, 1, 2), (8, 8, 4, 4, 3, 1, 0)]


@pytest.mark.parametrize("h,w,c,oc,k,stride,pad", CASES)
@pytest.mark.parametrize("pixels_per_step", [1, 2, 4])
def test_raster_conv_over_its_input_is_exact(h, w, c, oc, k, stride, pad, pixels_per_step):
    rng = np.random.default_rng(h * w + oc)
    x = rng.integers(-128, 128, (h, w, c))
    weights = rng.integers(-4, 5, (oc, k, k, c))
    delta = raster_overlap(conv_call(h, w, c, oc, k, stride, pad))
    assert delta is not None
    apart = run_raster(x, weights, stride, pad, 2 * (x.size + delta), pixels_per_step)
    np.testing.assert_array_equal(run_raster(x, weights, stride, pad, delta, pixels_per_step), apart)
    if pad:  # the check bites: with no gap the padded first rows overwrite input still to be read
        assert not np.array_equal(run_raster(x, weights, stride, pad, 0, pixels_per_step), apart)


def test_kernels_outside_raster_order_are_not_overlapped():
    assert raster_overlap(conv_call(8, 8, 4, 4, 1, 1, 0)) is None  # arm_convolve_1x1_s8_fast
    assert raster_overlap(conv_call(8, 8, 4, 4, 1, 2, 0)) is None  # arm_convolve_1x1_s8
    assert raster_overlap(conv_call(1, 8, 4, 4, 1, 1, 0)) is None
    assert raster_overlap(conv_call(8, 8, 4, 4, 3, 1, 1, groups=2)) is None  # groups loop outermost
    assert raster_overlap(conv_call(8, 8, 4, 4, 3, 1, 1, function="arm_depthwise_conv_wrapper_s8")) is None
    assert raster_overlap(conv_call(32, 32, 16, 16, 3, 1, 1)) == 1024  # two rows: ResNet-8's 3x3 convs


def _chain(n: int) -> Graph:
    g = Graph("chain")
    g.add_tensor(Tensor("x", (1, 16, 16, 8)))
    g.inputs = ["x"]
    g.add_const("w", np.zeros((8, 3, 3, 8), np.float32))
    prev = "x"
    attrs = {"layout": "NHWC", "strides": (1, 1), "pads": (1, 1, 1, 1), "dilations": (1, 1), "group": 1, "act": None}
    for i in range(n):
        g.add_node(Node(f"conv{i}", "Conv", [prev, "w"], [f"t{i}"], dict(attrs)))
        prev = f"t{i}"
    g.add_node(Node("flat", "Reshape", [prev], ["y"], {"shape": (1, 16 * 16 * 8)}))
    g.outputs = ["y"]
    return g


def test_planner_overlaps_a_chain():
    g = _chain(4)
    plain = plan_memory(g, {})
    delta = 2 * 16 * 8
    plan = plan_memory(g, {}, overlaps={f"conv{i}": delta for i in range(4)})
    assert plain.arena_size == 2 * 2048
    assert plan.arena_size < plain.arena_size and plan.overlapped
    for name in plan.overlapped:  # every overlapped output starts delta bytes before its input
        node = g.node(name)
        assert plan.location(node.inputs[0])[1] - plan.location(node.outputs[0])[1] >= delta
    assert not plan.schedule_optimal  # the order search does not model overlaps: no claim
