"""The lookup tables of kwscc.quant.lut: each entry is the op's exact value for its int8 input, rounded
once into the output format (half up) and saturated; PRelu gets one row per distinct channel slope."""
from __future__ import annotations

import math

import numpy as np
import pytest

from kwscc.ir import Graph, Node, Tensor
from kwscc.quant.formats import Format
from kwscc.quant.lut import channel_slopes, lookup, output_format, table

REFERENCE = {  # plain-Python definitions, independent of kwscc.ops
    "Sigmoid": lambda x: 1 / (1 + math.exp(-x)),
    "Tanh": math.tanh,
    "HardSigmoid": lambda x: min(max(0.25 * x + 0.4, 0.0), 1.0),
    "HardSwish": lambda x: x * min(max(x + 3, 0), 6) / 6,
    "LeakyRelu": lambda x: x if x >= 0 else 0.1 * x,
    "Relu": lambda x: max(x, 0.0),
}
ATTRS = {"HardSigmoid": {"alpha": 0.25, "beta": 0.4}, "LeakyRelu": {"alpha": 0.1}}


def _graph(op: str, shape=(1, 2, 2, 3), slope=None) -> tuple[Graph, Node]:
    g = Graph()
    g.add_tensor(Tensor("x", shape))
    g.inputs = ["x"]
    inputs = ["x"]
    if slope is not None:
        inputs.append(g.add_const("slope", np.asarray(slope, np.float32)).name)
    node = g.add_node(Node("n", op, inputs, ["y"], dict(ATTRS.get(op, {}))))
    g.outputs = ["y"]
    return g, node


@pytest.mark.parametrize("op", sorted(REFERENCE))
@pytest.mark.parametrize("in_fmt, out_fmt", [(Format(5), Format(7)), (Format(4, -128), Format(8, -128)),
                                             (Format(3, 17), Format(6))])
def test_each_entry_is_the_exact_value_rounded_once(op, in_fmt, out_fmt):
    g, node = _graph(op)
    rows = table(g, node, in_fmt, out_fmt)
    assert rows.shape == (1, 256) and rows.dtype == np.int8
    for q in range(-128, 128):
        y = REFERENCE[op]((q - in_fmt.zero_point) * 2.0 ** -in_fmt.frac)
        want = min(max(math.floor(y * 2.0 ** out_fmt.frac + 0.5) + out_fmt.zero_point, -128), 127)
        assert rows[0, q + 128] == want, (op, q)


def test_prelu_rows_per_channel_and_lookup():
    g, node = _graph("PRelu", slope=np.array([0.5, 0.25, 0.125]).reshape(1, 1, 3))
    assert channel_slopes(g, node).tolist() == [0.5, 0.25, 0.125]
    rows = table(g, node, Format(4), Format(4))
    assert rows.shape == (3, 256)
    x = np.array([[-16, -16, -16, 16, 16, 16]], np.int8).reshape(1, 1, 2, 3)
    assert lookup(rows, x).reshape(-1).tolist() == [-8, -4, -2, 16, 16, 16]
    g1, node1 = _graph("PRelu", slope=[0.2])
    assert table(g1, node1, Format(4), Format(4)).shape == (1, 256)


def test_prelu_slope_varying_along_a_spatial_axis_is_refused():
    g, node = _graph("PRelu", slope=np.arange(2, dtype=np.float32).reshape(1, 2, 1, 1) / 4)
    assert channel_slopes(g, node) is None


def test_output_format_from_the_range():
    assert output_format(0.0, 0.99) == Format(8, -128)  # never negative: one more bit with zero point -128
    assert output_format(-1.0, 0.5) == Format(7)
    assert output_format(-0.375, 5.0) == Format(4)
