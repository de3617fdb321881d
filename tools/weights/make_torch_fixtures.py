#!/usr/bin/env python3
"""Small PyTorch checkpoints written by the real `torch.save`, committed under
tests/fixtures/torch/ so that CI (which has no torch) checks the .pth reader
against torch's own output. Values follow one formula that
tests/weights_pytorch.rs recomputes: element i of a tensor is `i * 0.25 - 1`
in the tensor's dtype (before any view is taken).

  state_dict.pth      an OrderedDict as model.state_dict() has it, plus the
                      cases a reader can get wrong: f16, bf16, f64, a 0-d
                      tensor, an empty one, an nn.Parameter, a transposed
                      (strided) view, two slices of one shared storage (offsets),
                      an int64 buffer (num_batches_tracked)
  wrapped.pth         {"state_dict": <the same>, "epoch": 3} (a training checkpoint)
  module.pth          torch.save(nn.Linear(2, 3)): a pickled module, not a state dict
  legacy.pth          the state dict in the pre-1.6 format (_use_new_zipfile_serialization=False)
  legacy_wrapped.pth  {"state_dict": <the same>, "optimizer": {...a tensor...}}, legacy format

Usage: python tools/weights/make_torch_fixtures.py [OUT_DIR]   (default tests/fixtures/torch)
Needs torch (any 2.x; written with 2.15.0).
"""

import collections
import sys
from pathlib import Path

import torch


def ramp(shape, dtype):
    n = 1
    for d in shape:
        n *= d
    return (torch.arange(n, dtype=torch.float64) * 0.25 - 1).to(dtype).reshape(shape)


def state_dict():
    base = ramp((10,), torch.float32)
    sd = collections.OrderedDict()
    sd["conv.weight"] = ramp((4, 3, 2, 2), torch.float32)
    sd["half"] = ramp((5,), torch.float16)
    sd["bfloat"] = ramp((2, 3), torch.bfloat16)
    sd["double"] = ramp((3,), torch.float64)
    sd["scalar"] = ramp((), torch.float32)
    sd["empty"] = ramp((0, 4), torch.float32)
    sd["param"] = torch.nn.Parameter(ramp((2, 2), torch.float32))
    sd["transposed"] = ramp((3, 4), torch.float32).t()  # strides (1, 4)
    sd["slice_a"] = base[2:5]  # offset 2 into the shared storage
    sd["slice_b"] = base[6:9]  # offset 6
    sd["bn.num_batches_tracked"] = torch.tensor(7, dtype=torch.int64)
    return sd


def main():
    out = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[2] / "tests/fixtures/torch")
    out.mkdir(parents=True, exist_ok=True)
    sd = state_dict()
    torch.save(sd, out / "state_dict.pth")
    torch.save({"state_dict": sd, "epoch": 3}, out / "wrapped.pth")
    torch.manual_seed(0)
    torch.save(torch.nn.Linear(2, 3), out / "module.pth")
    torch.save(sd, out / "legacy.pth", _use_new_zipfile_serialization=False)
    optimizer = {"state": {0: {"momentum_buffer": ramp((3,), torch.float64)}}, "param_groups": [{"lr": 0.1}]}
    torch.save({"state_dict": sd, "optimizer": optimizer}, out / "legacy_wrapped.pth",
               _use_new_zipfile_serialization=False)
    for p in sorted(out.iterdir()):
        print(p, p.stat().st_size)


if __name__ == "__main__":
    main()
