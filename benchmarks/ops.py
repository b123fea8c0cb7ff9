"""Forward + backward time of minildm's fused ops against PyTorch (CPU), on the same machine in the same run.

    python benchmarks/ops.py                       # all ops, the default sizes
    python benchmarks/ops.py conv2d --rounds 6     # one op, more repetitions on a noisy machine
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/ops.py   # one thread each (steadier when busy)

For each op both libraries run the same float32 problem, in alternating blocks of runs (so that a burst of load
from another process tends to hit both). Printed: the median run of minildm and of torch and their ratio
(minildm / torch; lower is better), and the same for the best runs, a steadier estimate on a busy machine, with
the load average at the start (other processes' demand for the cores; compare it with the number of cores).
minildm runs on the active backend (MINILDM_BACKEND); torch always on the CPU, with one thread per core unless
OMP_NUM_THREADS says otherwise.
"""
import argparse
import os
import time

import numpy as np
import torch

from minildm import backend
from minildm.autograd import Tensor
from minildm.nn import functional as F


def _synchronize():
    if backend.name() == "cupy":
        import cupy
        cupy.cuda.Device().synchronize()


def conv2d_problem(rng):
    """3x3 convolution, 64 -> 64 channels, 32x32 images, batch 32, padding 1."""
    x, w, b = rng.standard_normal((32, 64, 32, 32)), 0.05 * rng.standard_normal((64, 64, 3, 3)), rng.standard_normal(64)
    return [x, w, b], lambda x, w, b: F.conv2d(x, w, b, padding=1), \
        lambda x, w, b: torch.nn.functional.conv2d(x, w, b, padding=1)


def group_norm_problem(rng):
    """GroupNorm with 32 groups on the conv's tensor (32, 64, 32, 32)."""
    x, w, b = rng.standard_normal((32, 64, 32, 32)), rng.standard_normal(64), rng.standard_normal(64)
    return [x, w, b], lambda x, w, b: F.group_norm(x, 32, w, b), \
        lambda x, w, b: torch.nn.functional.group_norm(x, 32, w, b)


def attention_problem(rng):
    """Self-attention, B=64, H=4 heads, T=64 tokens, d=32 per head."""
    q, k, v = (rng.standard_normal((64, 4, 64, 32)) for _ in range(3))
    return [q, k, v], F.scaled_dot_product_attention, torch.nn.functional.scaled_dot_product_attention


def gelu_problem(rng):
    """Exact GELU on a GEGLU gate's size, (64, 64, 512): 2M elements."""
    return [2 * rng.standard_normal((64, 64, 512))], F.gelu, torch.nn.functional.gelu


def silu_problem(rng):
    """SiLU on the conv's tensor (32, 64, 32, 32): 2M elements."""
    return [2 * rng.standard_normal((32, 64, 32, 32))], F.silu, torch.nn.functional.silu


PROBLEMS = {"conv2d": conv2d_problem, "group_norm": group_norm_problem, "attention": attention_problem,
            "gelu": gelu_problem, "silu": silu_problem}


def time_minildm(fn, arrays, grad_out):
    inputs = [Tensor(backend.to_device(a), requires_grad=True) for a in arrays]
    _synchronize()
    start = time.perf_counter()
    fn(*inputs).backward(grad_out)
    _synchronize()
    return time.perf_counter() - start


def time_torch(fn, arrays, grad_out):
    inputs = [torch.from_numpy(a).requires_grad_() for a in arrays]
    start = time.perf_counter()
    fn(*inputs).backward(grad_out)
    return time.perf_counter() - start


def bench(name, reps, warmup, rounds):
    """(median, best) forward+backward seconds of each library.

    The libraries run in alternating blocks (``rounds`` blocks each of ``warmup`` + ``reps`` runs), not run by run:
    both keep their worker threads spinning for a while after each call (OpenBLAS, OpenMP), and on a small
    machine that spinning would slow whichever library runs next.
    """
    rng = np.random.default_rng(0)
    arrays, ours, theirs = PROBLEMS[name](rng)
    arrays = [a.astype(np.float32) for a in arrays]
    with torch.no_grad():
        out_shape = theirs(*[torch.from_numpy(a) for a in arrays]).shape
    grad_out = rng.standard_normal(tuple(out_shape)).astype(np.float32)
    runners = {"minildm": lambda: time_minildm(ours, arrays, backend.to_device(grad_out)),
               "torch": lambda: time_torch(theirs, arrays, torch.from_numpy(grad_out))}
    times = {lib: [] for lib in runners}
    for _ in range(rounds):
        for lib, run in runners.items():
            time.sleep(0.2)  # let the other library's threads go idle
            block = [run() for _ in range(warmup + reps)]
            times[lib] += block[warmup:]
    return {lib: (float(np.median(t)), float(np.min(t))) for lib, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=5, help="timed runs per block")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs at the start of each block")
    parser.add_argument("--rounds", type=int, default=3, help="blocks per library, alternating")
    parser.add_argument("ops", nargs="*", help=f"any of {', '.join(PROBLEMS)} (default: all)")
    args = parser.parse_args()
    unknown = set(args.ops) - set(PROBLEMS)
    if unknown:
        parser.error(f"unknown op(s) {', '.join(sorted(unknown))}; choose from {', '.join(PROBLEMS)}")
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    print(f"minildm backend: {backend.name()}, torch {torch.__version__} on CPU with {torch.get_num_threads()} "
          f"threads; forward + backward, float32, {args.rounds} x {args.reps} runs each; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"{'':<11} {'median':^27}   {'best run':^27}")
    print(f"{'op':<11} {'minildm':>9} {'torch':>9} {'ratio':>7}   {'minildm':>9} {'torch':>9} {'ratio':>7}   problem")
    for name in args.ops or PROBLEMS:
        (ours, ours_best), (theirs, theirs_best) = bench(name, args.reps, args.warmup, args.rounds).values()
        problem = PROBLEMS[name].__doc__.strip().rstrip(".")
        print(f"{name:<11} {ours * 1e3:7.1f}ms {theirs * 1e3:7.1f}ms {ours / theirs:6.2f}x   "
              f"{ours_best * 1e3:7.1f}ms {theirs_best * 1e3:7.1f}ms {ours_best / theirs_best:6.2f}x   {problem}")


if __name__ == "__main__":
    main()
