"""Text-to-image sampling, end to end: minildm's StableDiffusionPipeline against diffusers' on PyTorch (CPU).

    python benchmarks/pipeline.py                          # 16 images x 30 DDIM steps, guidance 7.5
    python benchmarks/pipeline.py --folder path/to/model --rounds 3
    python benchmarks/pipeline.py --profile                # + a cProfile of one minildm call

Both libraries load the same diffusers-layout folder: the shipped model (minildm/weights/shapes) when it exists,
else the tiny random test pipeline (tests/fixtures/pipeline_tiny, images 16x16). Both sample with DDIM (η = 0)
from the same starting latents, 4 prompts x 4 images each, with a negative prompt and classifier-free guidance,
and the run first prints how far apart their images are (max abs difference on [0, 1]).

A timed call is the whole pipeline: tokenizing and encoding the prompts, the guided sampling loop (one U-Net call
per step on a batch of 2 x 16), and decoding. The libraries run in alternating blocks (``--rounds`` blocks of one
untimed warm-up call and ``--reps`` timed calls each), so that a burst of load from another process tends to hit
both. Printed: the median and the best call of each and minildm / diffusers (lower is better; target <= 1.3), and
the load average at the start. minildm runs on the active backend (MINILDM_BACKEND).

Threads: NumPy's BLAS (OpenBLAS) and torch use the same number, OMP_NUM_THREADS (or OPENBLAS_NUM_THREADS) if set,
else one per core. On a machine busy with other work, pin both to one thread, or the small matrix products of a
tiny model spend their time waiting for descheduled BLAS threads (measured 8x slower on a loaded 2-core machine):

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python benchmarks/pipeline.py
"""
import argparse
import cProfile
import os
import pstats
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHIPPED, TINY = ROOT / "minildm" / "weights" / "shapes", ROOT / "tests" / "fixtures" / "pipeline_tiny"
PROMPTS = ["a red circle at the top left", "a small blue square", "a large green triangle on the right",
           "a yellow diamond at the bottom"]
NEGATIVE = "a pink circle"
PER_PROMPT = 4


def _synchronize():
    from minildm import backend
    if backend.name() == "cupy":
        import cupy
        cupy.cuda.Device().synchronize()


def load(folder: Path):
    """(minildm pipeline, diffusers pipeline), both with a DDIM scheduler built from the folder's config."""
    import diffusers
    import torch
    from minildm.pipelines import StableDiffusionPipeline
    from minildm.schedulers import DDIMScheduler

    ours = StableDiffusionPipeline.from_pretrained(folder)
    ours.scheduler = DDIMScheduler.from_config(ours.scheduler.config)
    ours.show_progress = False
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # float32 compute in both: minildm loads float16 weights as float32, diffusers keeps the stored dtype
        theirs = diffusers.StableDiffusionPipeline.from_pretrained(folder, safety_checker=None,
                                                                   requires_safety_checker=False,
                                                                   torch_dtype=torch.float32)
    theirs.scheduler = diffusers.DDIMScheduler.from_config(theirs.scheduler.config)
    theirs.set_progress_bar_config(disable=True)
    return ours, theirs


def runners(ours, theirs, steps: int, guidance: float):
    """Two argument-free callables, each generating the same 16 images (float32 in [0, 1], (16, H, W, 3))."""
    import torch

    size = ours.default_size(None, None)
    shape = ours.latent_shape(len(PROMPTS) * PER_PROMPT, *size)
    latents = np.random.default_rng(0).standard_normal(shape).astype(np.float32)
    common = dict(negative_prompt=[NEGATIVE] * len(PROMPTS), num_images_per_prompt=PER_PROMPT,
                  num_inference_steps=steps, guidance_scale=guidance, height=size[0], width=size[1],
                  output_type="np")

    def run_ours():
        images = ours(PROMPTS, latents=latents, **common)
        _synchronize()
        return images

    def run_theirs():
        with torch.no_grad():
            return theirs(PROMPTS, latents=torch.from_numpy(latents), **common).images

    return {"minildm": run_ours, "diffusers": run_theirs}, shape


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--folder", type=Path, default=SHIPPED if (SHIPPED / "model_index.json").is_file() else TINY)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--guidance", type=float, default=7.5)
    parser.add_argument("--reps", type=int, default=2, help="timed calls per block")
    parser.add_argument("--rounds", type=int, default=2, help="blocks per library, alternating")
    parser.add_argument("--profile", action="store_true", help="cProfile one minildm call (top 25 by own time)")
    args = parser.parse_args()

    import torch
    from minildm import backend

    threads = int(os.environ.get("OMP_NUM_THREADS") or os.environ.get("OPENBLAS_NUM_THREADS") or os.cpu_count())
    torch.set_num_threads(threads)
    ours, theirs = load(args.folder)
    run, shape = runners(ours, theirs, args.steps, args.guidance)
    images = {lib: fn() for lib, fn in run.items()}
    print(f"model: {args.folder}  |  {shape[0]} images of {images['minildm'].shape[1]}x{images['minildm'].shape[2]}"
          f" (latents {shape[1:]}), {args.steps} DDIM steps, guidance {args.guidance}, negative prompt")
    print(f"minildm backend: {backend.name()} (BLAS threads: {os.environ.get('OPENBLAS_NUM_THREADS', 'default')}), "
          f"torch {torch.__version__} on CPU with {torch.get_num_threads()} threads; load average "
          f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(f"max |minildm - diffusers| on the images: {np.abs(images['minildm'] - images['diffusers']).max():.2e}")
    spacing = ours.scheduler.config.get("timestep_spacing", "leading")
    if spacing != "leading" and ours.scheduler.config["num_train_timesteps"] % args.steps:
        print(f"  (not a bug: with {spacing!r} spacing and {args.steps} steps, which do not divide T, minildm's DDIM "
              "steps to the next timestep of its grid and diffusers' to t - T // n; see minildm/schedulers/ddim.py. "
              "With --steps 10 they agree to ~1e-6.)")

    times = {lib: [] for lib in run}
    for _ in range(args.rounds):
        for lib, fn in run.items():
            time.sleep(0.2)  # let the other library's threads go idle
            fn()  # warm-up
            for _ in range(args.reps):
                start = time.perf_counter()
                fn()
                times[lib].append(time.perf_counter() - start)
    median = {lib: float(np.median(t)) for lib, t in times.items()}
    best = {lib: float(np.min(t)) for lib, t in times.items()}
    print(f"{'':<10} {'median call':>12} {'per step':>10} {'best call':>10}   ({args.rounds} x {args.reps} calls each)")
    for lib, t in median.items():
        print(f"{lib:<10} {t:11.3f}s {t / args.steps * 1e3:8.1f}ms {best[lib]:9.3f}s")
    print(f"ratio minildm / diffusers: {median['minildm'] / median['diffusers']:.2f}x median, "
          f"{best['minildm'] / best['diffusers']:.2f}x best (target <= 1.3)")

    if args.profile:
        profiler = cProfile.Profile()
        profiler.runcall(run["minildm"])
        pstats.Stats(profiler).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
