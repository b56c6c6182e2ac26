"""--streaming FRAMES: a recurrent model fed FRAMES time steps per NAME_run call, its LSTM/GRU state kept
between calls (a keyword spotter fed as the audio front end produces frames).

The whole-clip model is calibrated and quantized as usual; this derives the per-call program from it with
the very same formats and weights, so a clip fed FRAMES frames at a time ends in exactly the state, and
the output, of the whole clip at once. What changes: the time axis of the model input, of the reshapes
leading to the first recurrent layer, of the recurrent layers' inputs and of their "sequence" outputs
shrinks from the clip's T frames to FRAMES, and every LSTM/GRU continues from the state the previous call
left (NAME_reset_state() restores the initial state, zero or the model's). Layers after the last recurrent
layer run on every call, on its state after the call's last frame.

The form this supports: model input -> reshapes only -> LSTM/GRU layers (stacked: a layer's every-step
output may feed the next recurrent layer only) -> per-call layers on the last layer's final state (or the
sequence itself as the model output). Anything else is refused with one line naming the node. A split
input (kwscc.quant.split_input, hi then lo per time step) is cut into calls like any input: a call's
frames hold 2F int8 each.
"""
from __future__ import annotations

import dataclasses

import numpy as np

from kwscc.errors import UnsupportedError
from kwscc.ir import Graph, Node
from kwscc.ops.recurrent import RECURRENT_OPS
from kwscc.quant.quantize import QuantModel, Streaming
from kwscc.quant.simulate import simulate, simulate_float_inputs

OPTION = "--streaming"


def _refuse(reason: str) -> UnsupportedError:
    return UnsupportedError(f"{OPTION}: {reason}")


def _name(graph: Graph, node: Node) -> str:
    return f"'{node.name}' ({graph.node_sources.get(node.name, node.op)})"


def check_streamable(graph: Graph, frames: int, raised: bool = True) -> int:
    """The clip length T (frames per clip) of a model --streaming can feed `frames` at a time; refuses
    other models with one line (`raised`: whether unrolled cells were raised into LSTM/GRU layers)."""
    recurrent = [node for node in graph.nodes() if node.op in RECURRENT_OPS]
    if not recurrent:
        why = "" if raised else " (--no-raise-recurrent keeps unrolled cells as plain ops)"
        raise _refuse("the model has no recurrent layer (LSTM or GRU) whose state could be kept between calls; "
                      f"compile it without --streaming{why}")
    clip = graph.tensors[recurrent[0].inputs[0]].shape[1]
    if frames < 1 or clip % frames:
        raise _refuse(f"{frames} frames per call do not divide the model's clip of {clip} frames (layer "
                      f"{_name(graph, recurrent[0])})")
    timed = _timed_tensors(graph, recurrent)
    for tensor in timed:
        for node in graph.consumers(tensor):
            if node.op not in RECURRENT_OPS and node.outputs[0] not in timed:
                source = graph.producer(tensor)
                while source is not None and source.op == "Reshape":
                    source = graph.producer(source.inputs[0])
                what = "the model input" if source is None else f"the every-step output of {_name(graph, source)}"
                raise _refuse(f"node {_name(graph, node)} reads {what}, which is cut into calls of {frames} "
                              "frames; only reshapes may lie between the model input and the first LSTM/GRU, "
                              "and a layer's every-step output may only feed another LSTM/GRU")
    return clip


def _timed_tensors(graph: Graph, recurrent: list[Node]) -> set[str]:
    """Tensors with the time axis: the input's reshape chain, the recurrent inputs, the sequence outputs.
    Refuses a recurrent layer the chain does not reach (its input is computed by other ops)."""
    timed = {graph.inputs[0]}
    for node in graph.nodes():
        if node.op == "Reshape" and node.inputs[0] in timed:
            timed.add(node.outputs[0])
        elif node.op in RECURRENT_OPS:
            if node.inputs[0] not in timed:
                producer = graph.producer(node.inputs[0])
                raise _refuse(f"layer {_name(graph, node)} reads {_name(graph, producer)}; the LSTM/GRU layers "
                              "must read the model input through reshapes only, or each other's every-step "
                              "output")
            if node.attrs["output"] == "sequence":
                timed.add(node.outputs[0])
    return timed


def _shortened(shape: tuple[int, ...], clip: int, frames: int) -> tuple[int, ...] | None:
    """`shape` with its time axis (the first axis after the batch longer than 1, holding whole frames
    first in memory) cut from `clip` frames to `frames`; None when no axis holds the time that way."""
    for axis in range(1, len(shape)):
        if shape[axis] != 1:
            if shape[axis] % clip:
                return None
            return shape[:axis] + (shape[axis] // clip * frames,) + shape[axis + 1:]
    return None


def streaming_model(qm: QuantModel, frames: int) -> QuantModel:
    """The per-call program of the quantized whole-clip model `qm` (see the module docstring)."""
    clip = check_streamable(qm.graph, frames)
    graph = qm.graph.copy()
    recurrent = [node for node in graph.nodes() if node.op in RECURRENT_OPS]
    for name in _timed_tensors(graph, recurrent):
        tensor = graph.tensors[name]
        shape = _shortened(tensor.shape, clip, frames)
        if shape is None:
            raise _refuse(f"tensor '{name}' of shape {list(tensor.shape)} has no axis holding the {clip} time "
                          "steps as whole frames")
        graph.tensors[name] = dataclasses.replace(tensor, shape=shape)
        producer = graph.producer(name)
        if producer is not None and producer.op == "Reshape":
            producer.attrs["shape"] = shape
    layers = dict(qm.layers)
    for node in recurrent:  # its steps per call: FRAMES, or a multiple where a reshape regrouped the frames
        steps = graph.tensors[node.inputs[0]].shape[1]
        layers[node.name] = dataclasses.replace(qm.layers[node.name], steps=steps)
    graph.verify()
    return dataclasses.replace(qm, graph=graph, layers=layers, streaming=Streaming(frames, clip))


def calls_per_clip(qm: QuantModel) -> int:
    """NAME_run calls that feed one clip: clip / frames for a streaming program, else 1."""
    return qm.streaming.clip // qm.streaming.frames if qm.streaming else 1


def as_calls(qm: QuantModel, x: np.ndarray) -> np.ndarray:
    """Whole clips x [clips, ...] as the inputs of successive NAME_run calls [clips * calls, call input]: the
    input holds the time axis first, so each call's frames are contiguous."""
    return x.reshape(x.shape[0] * calls_per_clip(qm), -1)


def simulate_stream(qm: QuantModel, x: np.ndarray) -> np.ndarray:
    """The streaming program's simulated outputs [clips * calls, outputs] on float clips x [clips, ...],
    each clip one stream from the initial state (as the validation harness, which calls NAME_reset_state
    every calls_per_clip calls)."""
    calls = calls_per_clip(qm)
    name, out = qm.graph.inputs[0], qm.graph.outputs[0]
    chunks = as_calls(qm, x).reshape((x.shape[0], calls) + qm.graph.tensors[name].shape[1:])
    state: dict = {}
    per_call = [simulate_float_inputs(qm, {name: chunks[:, c]}, lambda q, feeds: simulate(q, feeds, state))[out]
                for c in range(calls)]
    return np.stack(per_call, axis=1).reshape(x.shape[0] * calls, -1)
