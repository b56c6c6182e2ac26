"""Regenerates the torch exports in this folder (needs torch and onnxscript, which the tests do not):

    python tests/data/exports/make_torch_exports.py

tiny_image_dynamo.onnx: a small PyTorch image classifier (3-channel NCHW input, zero pad, conv, batch
norm, Hardswish, depthwise conv, LeakyReLU, PReLU, Sigmoid gate, adaptive average pool, linear head)
exported with torch.onnx.export(dynamo=True), as users of torch >= 2.5 get by default. Weights are
seeded; the file is small enough to keep in the repository.
"""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent


class TinyImage(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.pad = nn.ZeroPad2d((1, 1, 1, 1))
        self.conv = nn.Conv2d(3, 8, 3, stride=2)
        self.bn = nn.BatchNorm2d(8)
        self.act = nn.Hardswish()
        self.dw = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.leaky = nn.LeakyReLU(0.1)
        self.pw = nn.Conv2d(8, 12, 1)
        self.prelu = nn.PReLU(12)
        self.gate = nn.Sigmoid()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(12, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.bn(self.conv(self.pad(x))))
        x = self.leaky(self.dw(x))
        x = self.gate(self.prelu(self.pw(x)))
        return self.fc(torch.flatten(self.pool(x), 1))


def main() -> None:
    torch.manual_seed(0)
    model = TinyImage().eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        model.bn.running_mean.uniform_(-0.2, 0.2)
        model.bn.running_var.uniform_(0.5, 1.5)
        model.prelu.weight.uniform_(0.05, 0.3)
    example = torch.randn(1, 3, 16, 16)
    torch.onnx.export(model, (example,), str(HERE / "tiny_image_dynamo.onnx"), dynamo=True, external_data=False)


if __name__ == "__main__":
    main()
