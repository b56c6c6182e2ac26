"""A small float TFLite UNIDIRECTIONAL_SEQUENCE_LSTM built in code (peepholes, projection, clips as
asked), for the tests of kwscc's LSTM op against LiteRT."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from tests.tflite.tfl_builder import ModelBuilder, options

# the fused op's inputs (tensorflow/lite/kernels/lstm_shared.h): x, W_ifco, R_ifco, peepholes i f o,
# biases i f c o, projection weights and bias, output and cell state, four layer-norm weights
INPUT_COUNT = 24


def lstm_tflite(directory: Path, *, steps: int, features: int, hidden: int, projection: int = 0,
                peepholes: bool = False, cell_clip: float = 0.0, proj_clip: float = 0.0, seed: int = 0,
                time_major: bool = False, name: str = "lstm.tflite", activation: int = 4, batch: int = 1) -> Path:
    """activation: the fused_activation_function code (4 = TANH, the only one kwscc reads)."""
    rng = np.random.default_rng(seed)
    out_size = projection or hidden
    b = ModelBuilder()
    x_shape = [steps, batch, features] if time_major else [batch, steps, features]
    x = b.tensor("x", x_shape)
    inputs = [x]
    inputs += [b.const(f"w_{g}", rng.normal(0, 0.5, (hidden, features)).astype(np.float32)) for g in "ifco"]
    inputs += [b.const(f"r_{g}", rng.normal(0, 0.5, (hidden, out_size)).astype(np.float32)) for g in "ifco"]
    inputs += ([b.const(f"p_{g}", rng.normal(0, 0.5, hidden).astype(np.float32)) for g in "ifo"] if peepholes
               else [-1] * 3)
    inputs += [b.const(f"b_{g}", rng.normal(0, 0.3, hidden).astype(np.float32)) for g in "ifco"]
    inputs += ([b.const("proj", rng.normal(0, 0.5, (out_size, hidden)).astype(np.float32)), -1] if projection
               else [-1, -1])
    for state, size in (("h_state", out_size), ("c_state", hidden)):
        inputs.append(b.tensor(state, [batch, size]))
        b.tensors[-1].isVariable = True
    inputs += [-1] * (INPUT_COUNT - len(inputs))
    y = b.tensor("y", [steps, batch, out_size] if time_major else [batch, steps, out_size])
    b.op("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs, [y],
         options("UnidirectionalSequenceLSTM", fusedActivationFunction=activation, cellClip=cell_clip, projClip=proj_clip,
                 timeMajor=time_major))
    return b.save(directory, [x], [y], name=name)
