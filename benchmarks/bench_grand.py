"""GraNd: ``torch.func`` (vmap over grad) vs a per-example backward loop.

Both compute the norm of each example's cross-entropy gradient over all
parameters (and over the output layer only) of zoo models at initialisation, on
MNIST-1D (mlp, cnn1d) and digits (resnet). The baseline is the plain way: one
``torch.autograd.grad`` call per example. Checks the results agree (allclose) and
reports the speed-up, best of ``--repeats`` alternated timings, one torch thread.

    python benchmarks/bench_grand.py [--n 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from curate.train import TensorData, make_model
from scorers.dynamics.gradients import grad_norms, output_layer

sys.path.insert(0, str(Path(__file__).parent))
from common import write_result  # noqa: E402

CASES = [("mlp", "builtin:mnist1d"), ("cnn1d", "builtin:mnist1d"), ("resnet", "builtin:digits")]


def loop_grad_norms(model, x, y, params):
    prefix, _ = output_layer(model, x[:1])
    chosen = [p for n, p in model.named_parameters()
              if params == "all" or n.rpartition(".")[0] == prefix]
    out = torch.empty(len(x))
    for i in range(len(x)):
        grads = torch.autograd.grad(F.cross_entropy(model(x[i:i + 1]), y[i:i + 1]), chosen)
        out[i] = torch.sqrt(sum(g.pow(2).sum() for g in grads))
    return out


def timed(fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    return time.perf_counter() - start, value


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=2000, help="examples per case")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    cold, _ = timed(lambda: grad_norms(make_model("mlp", (4,), 2).eval(), torch.randn(8, 4),
                                       torch.zeros(8, dtype=torch.long)))
    rows = []
    for model_name, source in CASES:
        data = TensorData.from_source(source)
        x, y = data.x[:args.n], data.y[:args.n]
        torch.manual_seed(0)
        model = make_model(model_name, data.input_shape, data.num_classes).eval()
        for params in ("all", "last"):
            loop_s, vmap_s = [], []
            for _ in range(args.repeats):
                t, ref = timed(loop_grad_norms, model, x, y, params)
                loop_s.append(t)
                t, got = timed(grad_norms, model, x, y, params=params)
                vmap_s.append(t)
            row = {"model": model_name, "data": source, "params": params, "n": len(x),
                   "loop_s": min(loop_s), "vmap_s": min(vmap_s),
                   "loop_s_all": loop_s, "vmap_s_all": vmap_s,
                   "speedup": min(loop_s) / min(vmap_s),
                   "speedup_median": statistics.median(loop_s) / statistics.median(vmap_s),
                   "allclose": bool(torch.allclose(got, ref, rtol=1e-4, atol=1e-6)),
                   "max_rel_diff": float(((got - ref).abs() / ref.abs().clamp_min(1e-12)).max())}
            rows.append(row)
            print(f"{model_name:7s} {params:4s} loop {row['loop_s']:.3f}s "
                  f"vmap {row['vmap_s']:.3f}s x{row['speedup']:.1f} allclose={row['allclose']}")
    path = write_result("grand", {
        "what": "per-example gradient norms: torch.func vmap(grad) vs per-example autograd loop",
        "torch": torch.__version__, "torch_threads": 1,
        "first_call_overhead_s": cold, "target_speedup": 10, "cases": rows})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
