"""Lowering to kwscc's own kernels (templates/cmsis_nn/kernels/): a depthwise and a pointwise/dense
kernel that compute exactly what the CMSIS-NN call they replace computes, so the simulator stays the same.

What they exploit, known only at compile time: every requantization is by a power of two 2^-k, which CMSIS-NN
does with the multiplier 2^30 and two roundings; when no accumulator can reach 2^30 and k >= 2 the same
result is one add and one shift (`requantize_constants`). A pointwise or dense layer has no padding, so its
input offset goes into the bias. Depthwise weights are stored as int16 in the order the SIMD loop reads them.
The wide variants (--optimize speed) store their weights as int16 pairs and widen their input once into a
small scratch (the pointwise and convolution kernels each two rows, the depthwise kernel the rows its kernel
reads), so that their inner loops are loads and multiply-accumulates only: fewer instructions for twice the
weights' flash and a scratch.

A model some of whose layers keep a quantized model's int8 weights (kwscc.quant.int8_weights) requantizes by
multipliers that are not 2^30: then every layer on these kernels takes CMSIS-NN's (multiplier, shift) instead
(`multiplier_mode`), the same arithmetic as arm_nn_requantize, with k >= 0 and accumulators below 2^30.
"""
from __future__ import annotations

import numpy as np

from kwscc.backends.cmsis_nn.kernels import ConstArray, KernelCall, align4
from kwscc.ir import Node
from kwscc.quant.quantize import QuantModel

ACC_LIMIT = 1 << 30  # below it (and k <= 30), acc + round cannot overflow int32, nor 2 * acc
MAX_SHIFT = 31
POINTWISE, DEPTHWISE, CONV, DENSE = "kwscc_pointwise_s8", "kwscc_depthwise_s8", "kwscc_conv_s8", "kwscc_dense_s8"
POINTWISE_WIDE, CONV_WIDE, DEPTHWISE_WIDE = "kwscc_pointwise_wide_s8", "kwscc_conv_wide_s8", "kwscc_depthwise_wide_s8"
# the templates/cmsis_nn/kernels/ each kernel needs (model.c defines them in kernels.KWSCC_KERNELS order)
_COMMON = ("kwscc_simd", "kwscc_requantize")
_DOT = _COMMON + ("kwscc_sxtb16_ror8", "kwscc_dot_row")
NEEDS = {DEPTHWISE: _COMMON + ("kwscc_sxtab16_ror8", DEPTHWISE), DENSE: _DOT + (DENSE,),
         POINTWISE: _DOT + ("kwscc_dot_rows", POINTWISE), CONV: _DOT + ("kwscc_dot_rows", "kwscc_im2col_s8", CONV)}
_WIDE = _COMMON + ("kwscc_sxtb16_ror8", "kwscc_pack16", "kwscc_load2", "kwscc_widen_s8", "kwscc_dot_wide")
NEEDS.update({POINTWISE_WIDE: _WIDE + (POINTWISE_WIDE,), CONV_WIDE: _WIDE + ("kwscc_im2col_s8", CONV_WIDE),
              DEPTHWISE_WIDE: _COMMON + ("kwscc_sxtab16_ror8", "kwscc_pack16", "kwscc_load2", DEPTHWISE_WIDE)})


def requantize_constants(k: np.ndarray, rounding: str) -> np.ndarray:
    """Per channel the constant R with y = (acc + R - (2 if acc < -1 and default rounding)) >> k equal to
    CMSIS-NN's arm_nn_requantize(acc, 2^30, 1 - k) for 2 <= k <= 30 and |acc| < 2^30. The kernels start
    the accumulator at bias + R, so acc < -1 is acc + R < R - 1: the threshold array holds R - 1.

    Default (double) rounding: h = floor((acc + 1) / 2), then h / 2^(k-1) rounded half away from zero, which
    is floor((h + 2^(k-2) - [h < 0]) / 2^(k-1)) = floor((acc + 1 + 2^(k-1) - 2 [acc < -1]) / 2^k).
    Single rounding: floor((floor(acc / 2^(k-1)) + 1) / 2) = floor((acc + 2^(k-1)) / 2^k)."""
    k = np.asarray(k, np.int64)
    half = np.int64(1) << (k - 1)
    return (half + (1 if rounding == "default" else 0)).astype(np.int32)


def _offset_range(offset: int) -> int:
    """Largest |x + offset| over int8 x."""
    return max(abs(-128 + offset), abs(127 + offset))


def requantize_arrays(bias: np.ndarray, k, rounding: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """int32 (bias + R, threshold R - 1, k) per channel, the kernels' requantization (requantize_constants)."""
    bias = np.asarray(bias, np.int64)
    k = np.broadcast_to(np.asarray(k, np.int64), bias.shape)
    r = requantize_constants(k, rounding).astype(np.int64)
    return (bias + r).astype(np.int32), (r - 1).astype(np.int32), k.astype(np.int32)


def multiplier_mode(qm: QuantModel) -> bool:
    """Whether the model's layers on these kernels requantize by (multiplier, shift) rather than add-and-shift."""
    return any(getattr(layer, "multiplier", None) is not None for layer in qm.layers.values())


def folded_bias(bias, w2: np.ndarray, input_offset: int, k, multiplier: bool = False) -> np.ndarray | None:
    """bias + input_offset * sum(w) per output of [cout, depth] weights (the dot-product kernels' start), or
    None if k is outside the requantization's range or an accumulator, CMSIS-NN's or the kernel's partial
    sums, could reach 2^30."""
    bias = np.broadcast_to(np.asarray(bias, np.int64), w2.shape[:1])
    w2 = np.asarray(w2, np.int64)
    folded = bias + input_offset * w2.sum(axis=1)
    weight_sum = np.abs(w2).sum(axis=1)
    bound = np.maximum(np.abs(bias) + weight_sum * _offset_range(input_offset), np.abs(folded) + weight_sum * 128)
    return folded if _fits(k, bound, multiplier) else None


def depthwise_fits(bias, w_taps: np.ndarray, input_offset: int, k, multiplier: bool = False) -> bool:
    """kwscc_depthwise_s8's requantization is exact for [taps, C] weights: k in range, accumulators < 2^30."""
    bias = np.broadcast_to(np.asarray(bias, np.int64), w_taps.shape[1:])
    return _fits(k, np.abs(bias) + np.abs(np.asarray(w_taps, np.int64)).sum(axis=0) * _offset_range(input_offset),
                 multiplier)


def _fits(k, bound: np.ndarray, multiplier: bool = False) -> bool:
    """Add-and-shift needs 2 <= k <= 30; (multiplier, shift) k >= 0 (at most a doubling of the accumulator)."""
    k = np.asarray(k, np.int64)
    lowest, highest = (0, MAX_SHIFT) if multiplier else (2, 30)
    return bool(k.min() >= lowest and k.max() <= highest and (bound < ACC_LIMIT).all())


def _quant_arrays(prefix: str, bias: np.ndarray, layer, rounding: str, multiplier: bool) -> list[ConstArray]:
    if multiplier:
        mult, shift = layer.requantization()
        return [ConstArray(f"{prefix}_b", "int32_t", np.asarray(bias).astype(np.int32), "bias"),
                ConstArray(f"{prefix}_mult", "int32_t", mult, "multiplier"),
                ConstArray(f"{prefix}_shift", "int32_t", shift, "shift")]
    bias_r, threshold, shift = requantize_arrays(bias, layer.shift, rounding)
    return [ConstArray(f"{prefix}_b", "int32_t", bias_r, "bias"),
            ConstArray(f"{prefix}_threshold", "int32_t", threshold, "shift"),
            ConstArray(f"{prefix}_k", "int32_t", shift, "shift")]


def pointwise(qm: QuantModel, node: Node, cmsis: KernelCall, prefix: str, wide: bool = False) -> KernelCall | None:
    """kwscc_pointwise_s8 (wide: kwscc_pointwise_wide_s8) for a 1x1 stride-1 unpadded convolution,
    kwscc_dense_s8 for a dense layer (never wide: one row shares nothing); None if it does not apply."""
    layer, a = qm.layers[node.name], node.attrs
    mode = multiplier_mode(qm)
    if node.op == "Conv":
        x_shape = qm.graph.tensors[node.inputs[0]].shape
        w = layer.weights
        if (w.shape[1:3] != (1, 1) or any(a["pads"]) or tuple(a["strides"]) != (1, 1)
                or tuple(a["dilations"]) != (1, 1) or w.shape[3] != x_shape[3] or cmsis.params.get("split")):
            return None
        pixels = int(np.prod(x_shape[1:3]))
    elif wide:
        return None
    else:
        pixels = 1
    w2 = layer.weights.reshape(layer.weights.shape[0], -1).astype(np.int64)
    bias = folded_bias(layer.bias, w2, layer.input_offset, layer.shift, mode)
    if bias is None:
        return None
    params = {"pixels": pixels, "cin": w2.shape[1], "cout": w2.shape[0], "act": layer.act}
    quant = _quant_arrays(prefix, bias, layer, qm.rounding, mode)
    if wide:
        scratch = 4 * align4(w2.shape[1])  # two rows of int16
        return KernelCall(node, POINTWISE_WIDE, "ops/kwscc_pointwise_wide.c.j2", params,
                          {"c": scratch, "dsp": scratch, "mve": scratch}, cmsis.macs,
                          [ConstArray(f"{prefix}_w32", "int32_t", wide_weights(w2), "weights"), *quant],
                          kernels=NEEDS[POINTWISE_WIDE])
    arrays = [ConstArray(f"{prefix}_w", "int8_t", pointwise_weights(w2), "weights"), *quant]
    function = DENSE if node.op == "Dense" else POINTWISE
    template = "ops/kwscc_dense.c.j2" if node.op == "Dense" else "ops/kwscc_pointwise.c.j2"
    return KernelCall(node, function, template, params, {"c": 0, "dsp": 0, "mve": 0}, cmsis.macs, arrays,
                      kernels=NEEDS[function])


def conv(qm: QuantModel, node: Node, cmsis: KernelCall, prefix: str, wide: bool = False) -> KernelCall | None:
    """kwscc_conv_s8 (wide: kwscc_conv_wide_s8) for a convolution with one group and no dilation (the split
    input's layer included: its [hi, lo] weights go to flash whole); None if it does not apply."""
    layer, p = qm.layers[node.name], cmsis.params
    if node.op != "Conv" or cmsis.function != "arm_convolve_wrapper_s8":
        return None
    mode = multiplier_mode(qm)
    w = layer.weights  # OHWI, over the hi and lo channels for the split input's layer
    if tuple(p["dilation"]) != (1, 1) or w.shape[3] != p["input_dims"]["c"]:  # dilated or grouped
        return None
    w2 = w.reshape(w.shape[0], -1).astype(np.int64)
    bias = folded_bias(layer.bias, w2, layer.input_offset, layer.shift, mode)
    if bias is None:
        return None
    depth = w2.shape[1]
    params = {"in_h": p["input_dims"]["h"], "in_w": p["input_dims"]["w"], "ch": p["input_dims"]["c"],
              "k_h": w.shape[1], "k_w": w.shape[2], "stride": p["stride"], "padding": p["padding"],
              "out_h": p["output_dims"]["h"], "out_w": p["output_dims"]["w"], "cout": w.shape[0],
              "pad": -layer.input_offset, "act": layer.act, "split": bool(p["split"])}
    weights = (ConstArray(f"{prefix}_w32", "int32_t", wide_weights(w2), "weights") if wide
               else ConstArray(f"{prefix}_w", "int8_t", pointwise_weights(w2), "weights"))
    arrays = [weights, *_quant_arrays(prefix, bias, layer, qm.rounding, mode)]
    # two windows (wide: then the two as int16 pairs)
    per_depth = 6 if wide else 2
    scratch = per_depth * align4(depth)
    unsplit = None
    if p["split"]:
        unsplit_scratch = per_depth * align4(depth // 2)
        unsplit = {"c": unsplit_scratch, "dsp": unsplit_scratch, "mve": unsplit_scratch}
    function = CONV_WIDE if wide else CONV
    template = "ops/kwscc_conv_wide.c.j2" if wide else "ops/kwscc_conv.c.j2"
    return KernelCall(node, function, template, params, {"c": scratch, "dsp": scratch, "mve": scratch},
                      cmsis.macs, arrays, unsplit_scratch=unsplit, kernels=NEEDS[function])


def depthwise_weights(w_taps: np.ndarray) -> np.ndarray:
    """[taps, C] int8 weights as kwscc_depthwise_s8 reads them: int16, per group of 4 channels, per tap, in the
    order (0, 2, 1, 3)."""
    taps, ch = w_taps.shape
    return w_taps.reshape(taps, ch // 4, 4)[:, :, [0, 2, 1, 3]].transpose(1, 0, 2).reshape(-1).astype(np.int16)


def pointwise_weights(w: np.ndarray) -> np.ndarray:
    """[cout, cin] int8 weights in kwscc_pointwise_s8's order: per pair of outputs, 4 weights of each in turn
    for every 4 channels, then the cin % 4 last of each; an odd last output's row as it is."""
    cout, cin = w.shape
    full = cin // 4 * 4
    parts = []
    for o in range(0, cout - 1, 2):
        pair = w[o:o + 2]
        parts.append(pair[:, :full].reshape(2, -1, 4).transpose(1, 0, 2).reshape(-1))
        parts.append(pair[:, full:].reshape(-1))
    if cout % 2:
        parts.append(w[-1])
    return np.concatenate(parts).astype(np.int8)


def wide_weights(w: np.ndarray) -> np.ndarray:
    """[cout, depth] int8 weights as kwscc_dot_wide reads them: int32 words of two int16 (low half first),
    (w[0], w[2]) and (w[1], w[3]) of every 4 of the depth (zero-padded to a multiple of 4); per pair of
    outputs, per 4 of the depth, the first output's two words then the second's; an odd last output's alone."""
    cout, depth = w.shape
    w = np.pad(np.asarray(w, np.int64), ((0, 0), (0, align4(depth) - depth)))
    pairs = w.reshape(cout, -1, 4)[:, :, [0, 2, 1, 3]].reshape(cout, -1, 2, 2)
    words = (pairs[..., 0] & 0xFFFF) | ((pairs[..., 1] & 0xFFFF) << 16)  # [cout, blocks, 2]
    parts = [words[o:o + 2].transpose(1, 0, 2).reshape(-1) for o in range(0, cout - 1, 2)]
    if cout % 2:
        parts.append(words[-1].reshape(-1))
    return np.concatenate(parts).astype(np.uint32).view(np.int32)


def depthwise(qm: QuantModel, node: Node, cmsis: KernelCall, prefix: str, wide: bool = False) -> KernelCall | None:
    """kwscc_depthwise_s8 (wide: kwscc_depthwise_wide_s8, the input rows widened in the scratch) for a depthwise
    convolution with channel multiplier 1, no dilation and channels a multiple of 4; None if it does not apply."""
    layer, p = qm.layers[node.name], cmsis.params
    ch = p["input_dims"]["c"]
    if p["ch_mult"] != 1 or tuple(p["dilation"]) != (1, 1) or ch % 4:
        return None
    mode = multiplier_mode(qm)
    kh, kw = p["filter_dims"]["h"], p["filter_dims"]["w"]
    w = cmsis.arrays[0].values.reshape(kh * kw, ch)  # [taps, C], CMSIS-NN's order
    if not depthwise_fits(layer.bias, w, layer.input_offset, layer.shift, mode):
        return None
    params = {"in_h": p["input_dims"]["h"], "in_w": p["input_dims"]["w"], "ch": ch, "k_h": kh, "k_w": kw,
              "stride": p["stride"], "padding": p["padding"], "out_h": p["output_dims"]["h"],
              "out_w": p["output_dims"]["w"], "input_offset": layer.input_offset, "act": layer.act}
    quant = _quant_arrays(prefix, layer.bias, layer, qm.rounding, mode)
    if wide:  # 2 k_h - 1 rows of (out_w - 1) * stride_w + k_w columns, 8 bytes each; the weights in words
        scratch = (2 * kh - 1) * ((params["out_w"] - 1) * p["stride"][1] + kw) * 8
        words = depthwise_weights(w).astype(np.int64).reshape(-1, 2)
        packed = ((words[:, 0] & 0xFFFF) | ((words[:, 1] & 0xFFFF) << 16)).astype(np.uint32).view(np.int32)
        return KernelCall(node, DEPTHWISE_WIDE, "ops/kwscc_depthwise_wide.c.j2", params,
                          {"c": scratch, "dsp": scratch, "mve": scratch}, cmsis.macs,
                          [ConstArray(f"{prefix}_w32", "int32_t", packed, "weights"), *quant],
                          kernels=NEEDS[DEPTHWISE_WIDE])
    return KernelCall(node, DEPTHWISE, "ops/kwscc_depthwise.c.j2", params, {"c": 0, "dsp": 0, "mve": 0},
                      cmsis.macs, [ConstArray(f"{prefix}_w16", "int16_t", depthwise_weights(w), "weights"), *quant],
                      kernels=NEEDS[DEPTHWISE])


def full_range(calls: list[KernelCall]) -> bool:
    """Whether every call of kwscc's requantizing kernels clamps to the full int8 range (then one saturation
    replaces the clamp in kwscc_requantize)."""
    return all(tuple(call.params["act"]) == (-128, 127) for call in calls if call.function in NEEDS)


def needed_kernels(functions) -> set[str]:
    """The kernel templates the given kwscc kernels need."""
    return {k for f in functions for k in NEEDS[f]}
