"""``demo`` (the 2-D toy diffusion model, end to end) and ``info`` (versions, backend, GPU)."""
from __future__ import annotations

import importlib.util
import platform
from pathlib import Path

from .. import __version__, backend
from .common import UsageError, non_negative_int, positive_int, writable_file, writable_folder


# -- demo ---------------------------------------------------------------------------------------------------------
def add_demo(subparsers) -> None:
    from ..train.toy2d import Toy2DConfig  # the defaults live with the recipe
    defaults = Toy2DConfig()
    p = subparsers.add_parser("demo", help="train a tiny diffusion model on 2-D points and plot its samples",
                              description="Train a DDPM on points of a spiral (about half a minute on 2 CPU cores), "
                                          "sample it with DDPM and DDIM, and save a figure of data vs samples.")
    p.add_argument("--steps", type=positive_int, default=defaults.steps,
                   help=f"training steps (default {defaults.steps})")
    p.add_argument("--seed", type=non_negative_int, default=defaults.seed, help="random seed (default 0)")
    p.add_argument("--samples", type=positive_int, default=defaults.num_samples,
                   help=f"points to draw with each sampler (default {defaults.num_samples})")
    p.add_argument("--out", type=Path, default=Path("demo.png"), help="the figure to write (default demo.png)")
    p.add_argument("--run-dir", type=Path, default=Path("runs/demo"),
                   help="folder for the checkpoint and loss curve (default runs/demo)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoint in --run-dir")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(run=run_demo)


def run_demo(args) -> int:
    from ..train import CHECKPOINT_NAME, ResumeError, toy2d
    if args.resume and not (args.run_dir / CHECKPOINT_NAME).is_file():
        raise UsageError(f"--resume: there is no checkpoint in {args.run_dir} (run once without --resume first)")
    out = writable_file(args.out, ".png")
    run_dir = writable_folder(args.run_dir)
    config = toy2d.Toy2DConfig(steps=args.steps, seed=args.seed, num_samples=args.samples)
    try:
        result = toy2d.run(config, out, run_dir, resume=args.resume, progress=not args.no_progress)
    except ResumeError as e:  # the checkpoint is of another run (seed), or already past --steps
        raise UsageError(str(e)) from None
    print(f"trained {config.steps} steps in {result.train_seconds:.1f} s "
          f"(mean loss of the last {min(100, config.steps)} steps: {result.final_loss:.4f}); "
          f"sampled in {result.sample_seconds:.1f} s")
    print(f"mean distance to the spiral: data {result.data_distance:.3f}, DDPM samples {result.ddpm_distance:.3f}, "
          f"DDIM samples {result.ddim_distance:.3f}")
    print(f"wrote {result.figure}  (data vs DDPM and DDIM samples, loss curve)")
    print(f"wrote {result.loss_curve}")
    print(f"wrote {result.checkpoint}  (continue training with --resume --steps N)")
    return 0


# -- info ---------------------------------------------------------------------------------------------------------
def add_info(subparsers) -> None:
    p = subparsers.add_parser("info", help="show versions, the active backend and whether a GPU can be used",
                              description="Show the versions minildm runs with and whether CuPy (GPU) is usable.")
    p.set_defaults(run=run_info)


def run_info(args) -> int:
    import matplotlib
    import numpy
    import tqdm
    print(f"minildm     {__version__}")
    print(f"python      {platform.python_version()} ({platform.platform()})")
    print(f"numpy       {numpy.__version__}")
    print(f"matplotlib  {matplotlib.__version__}")
    print(f"tqdm        {tqdm.__version__}")
    print(f"backend     {backend.name()}  (choose with MINILDM_BACKEND=numpy|cupy or --backend)")
    print(f"cupy        {_cupy_status()}")
    return 0


def _cupy_status() -> str:
    """'not installed', or CuPy's version and the GPUs it sees (or why it cannot use one)."""
    if importlib.util.find_spec("cupy") is None:
        return "not installed (pip install cupy-cuda12x for a GPU)"
    try:
        import cupy
        count = cupy.cuda.runtime.getDeviceCount()
        names = [cupy.cuda.runtime.getDeviceProperties(i)["name"].decode() for i in range(count)]
    except Exception as e:  # noqa: BLE001 — a broken CUDA install can raise almost anything; report, don't crash
        return f"installed but unusable: {type(e).__name__}: {e}"
    return f"{cupy.__version__}, {count} GPU(s): {', '.join(names) or 'none'}"
