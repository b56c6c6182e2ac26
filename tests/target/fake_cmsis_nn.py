"""A fake CMSIS-NN checkout for testing --cmsis-nn DIR: the real library cannot be downloaded here, so kwscc's
own host kernels are laid out like ARM-software/CMSIS-NN v7 (Include/, Source/<folder>/, a .pdsc)."""
from __future__ import annotations

import shutil
from pathlib import Path

HOST = Path(__file__).resolve().parents[2] / "backends" / "cmsis_nn" / "host"
LAYOUT = {
    "arm_convolve_s8.c": "ConvolutionFunctions",
    "arm_depthwise_conv_s8.c": "ConvolutionFunctions",
    "arm_elementwise_s8.c": "BasicMathFunctions",
    "arm_fully_connected_s8.c": "FullyConnectedFunctions",
    "arm_lstm_s8.c": "LSTMFunctions",
    "arm_pool_s8.c": "PoolingFunctions",
    "arm_softmax_s8.c": "SoftmaxFunctions",
}
OTHER_FOLDER = "NNSupportFunctions"  # host kernel files LAYOUT does not name: where they are does not matter
PDSC = """<?xml version="1.0" encoding="UTF-8"?>
<package schemaVersion="1.7.7">
  <name>CMSIS-NN</name>
  <releases>
    <release version="{version}" date="2024-11-11">fake checkout made by kwscc's tests</release>
  </releases>
</package>
"""


def make_fake_cmsis_nn(root: Path, version: str = "7.0.0") -> Path:
    root = Path(root)
    (root / "Include").mkdir(parents=True, exist_ok=True)
    for header in HOST.glob("*.h"):
        shutil.copy(header, root / "Include" / header.name)
    for source in sorted(HOST.glob("*.c")):
        folder = root / "Source" / LAYOUT.get(source.name, OTHER_FOLDER)
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, folder / source.name)
    (root / "ARM.CMSIS-NN.pdsc").write_text(PDSC.format(version=version))
    return root
