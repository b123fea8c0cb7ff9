"""One training step (forward + backward + AdamW) and one forward pass of the U-Net and of the VAE: minildm against
diffusers on PyTorch.

    python benchmarks/unet.py                  # both models: timings, peak memory, cProfile of minildm's U-Net step
    python benchmarks/unet.py --model vae      # only the VAE (or --model unet)
    python benchmarks/unet.py --rounds 4       # more repetitions on a noisy machine
    python benchmarks/unet.py --no-memory --no-profile

The model is the same in both libraries: diffusers builds it (torch.manual_seed(0)) and minildm loads diffusers'
state dict with strict=True; the run first checks that both predict the same noise. The problem is a small latent
diffusion U-Net: block_out_channels (64, 128), one ResNet (+ transformer) per level, a cross-attention mid block,
8 heads, 32 GroupNorm groups, a batch of 64 latents 4x8x8 with 12 context tokens of width 64. The VAE is the
shipped model's ``AutoencoderKL`` at 32x32: block_out_channels (16, 32, 64), one ResNet per level, mid-block
attention, 4 latent channels; a batch of 32 images. Its training step is the autoencoder recipe's: z ~ q(z|x) with a
given noise, decode, MSE + 1e-5 KL. Its forward pass encodes (posterior mean) and decodes. float32, CPU.

Timing: both libraries run in the same process, in alternating blocks of runs (``--rounds`` blocks of ``--warmup``
untimed + ``--reps`` timed runs each), so that a burst of load from another process tends to hit both; printed are
the medians, the best runs (steadier on a busy machine) and minildm / torch (lower is better), with the load average
at the start. By default torch gets one thread per core and NumPy's BLAS
uses all cores; on a machine shared with other jobs multithreaded BLAS degrades badly (threads wait on each
other), so compare single-threaded there:

    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 python benchmarks/unet.py

Peak memory, measured in a fresh subprocess per library and mode (so neither sees the other's allocations):
  * "peak RSS": the kernel's high-water mark of resident memory (VmHWM in /proc/self/status, reset to the current
    RSS just before the runs by writing 5 to /proc/self/clear_refs) over two runs, minus the resident memory
    before them (after imports, model, optimizer and inputs are set up). Same method for both libraries: it counts
    every page either allocator (glibc malloc under NumPy, PyTorch's CPU allocator) made resident, including
    allocator caches, so it is an upper bound on live tensors. Linux only. (ru_maxrss is not usable here: a
    child process inherits its parent's high-water mark.)
  * "traced": for minildm only, the tracemalloc peak during one step (NumPy reports its array buffers to
    tracemalloc): the exact peak of live arrays above what was live before the step. PyTorch's allocator is
    invisible to tracemalloc, so there is no torch figure of this kind.
"""
import argparse
import cProfile
import json
import os
import pstats
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

CONFIG = dict(block_out_channels=(64, 128), layers_per_block=1,
              down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
              up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=64, attention_head_dim=8,
              norm_num_groups=32, sample_size=8)
BATCH, TOKENS = 64, 12


def make_problem(folder: Path):
    """diffusers' random weights (safetensors) and one batch of inputs (npz), written once, read by every runner."""
    import torch
    from diffusers import UNet2DConditionModel
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = UNet2DConditionModel(**CONFIG)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "weights.safetensors"))
    rng = np.random.default_rng(0)
    np.savez(folder / "inputs.npz", sample=rng.standard_normal((BATCH, 4, 8, 8)).astype(np.float32),
             timestep=rng.integers(0, 1000, BATCH), context=rng.standard_normal((BATCH, TOKENS, 64)).astype(np.float32),
             noise=rng.standard_normal((BATCH, 4, 8, 8)).astype(np.float32))


class MinildmRunner:
    def __init__(self, folder: Path):
        from minildm import backend
        from minildm.io import load_safetensors
        from minildm.models.unet import UNet2DConditionModel
        from minildm.optim import AdamW

        self.backend = backend
        self.model = UNet2DConditionModel.from_config(CONFIG, generator=0)
        self.model.load_state_dict(load_safetensors(folder / "weights.safetensors"), strict=True)
        self.optimizer = AdamW(self.model.parameters(), lr=1e-4)
        with np.load(folder / "inputs.npz") as f:
            self.inputs = {k: backend.to_device(f[k]) for k in f.files}

    def _sync(self):
        if self.backend.name() == "cupy":
            import cupy
            cupy.cuda.Device().synchronize()

    def forward(self):
        from minildm import no_grad
        with no_grad():
            out = self.model(self.inputs["sample"], self.inputs["timestep"], self.inputs["context"])
        self._sync()
        return self.backend.to_host(out.data)

    def train_step(self):
        from minildm.nn import functional as F
        self.optimizer.zero_grad()
        pred = self.model(self.inputs["sample"], self.inputs["timestep"], self.inputs["context"])
        loss = F.mse_loss(pred, self.inputs["noise"])  # epsilon-prediction (Ho et al. 2020, eq. 14)
        loss.backward()
        self.optimizer.step()
        self._sync()
        return loss.item()


class TorchRunner:
    def __init__(self, folder: Path):
        import torch
        from diffusers import UNet2DConditionModel
        from safetensors.torch import load_file

        self.torch = torch
        self.model = UNet2DConditionModel(**CONFIG)
        self.model.load_state_dict(load_file(str(folder / "weights.safetensors")), strict=True)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        with np.load(folder / "inputs.npz") as f:
            self.inputs = {k: torch.from_numpy(f[k]) for k in f.files}

    def forward(self):
        with self.torch.no_grad():
            return self.model(self.inputs["sample"], self.inputs["timestep"], self.inputs["context"]).sample.numpy()

    def train_step(self):
        self.optimizer.zero_grad()
        pred = self.model(self.inputs["sample"], self.inputs["timestep"], self.inputs["context"]).sample
        loss = self.torch.nn.functional.mse_loss(pred, self.inputs["noise"])
        loss.backward()
        self.optimizer.step()
        return loss.item()


VAE_CONFIG = dict(block_out_channels=(16, 32, 64), layers_per_block=1, latent_channels=4, norm_num_groups=16,
                  down_block_types=("DownEncoderBlock2D",) * 3, up_block_types=("UpDecoderBlock2D",) * 3,
                  sample_size=32)
VAE_BATCH, KL_WEIGHT = 32, 1e-5


def make_vae_problem(folder: Path):
    import torch
    from diffusers import AutoencoderKL
    from safetensors.torch import save_file

    torch.manual_seed(0)
    model = AutoencoderKL(**VAE_CONFIG)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "vae.safetensors"))
    rng = np.random.default_rng(0)
    np.savez(folder / "vae_inputs.npz", images=rng.uniform(-1, 1, (VAE_BATCH, 3, 32, 32)).astype(np.float32),
             eps=rng.standard_normal((VAE_BATCH, 4, 8, 8)).astype(np.float32))


class MinildmVAERunner(MinildmRunner):
    def __init__(self, folder: Path):
        from minildm import backend
        from minildm.io import load_safetensors
        from minildm.models import AutoencoderKL
        from minildm.optim import AdamW

        self.backend = backend
        self.model = AutoencoderKL.from_config(VAE_CONFIG, generator=0)
        self.model.load_state_dict(load_safetensors(folder / "vae.safetensors"), strict=True)
        self.optimizer = AdamW(self.model.parameters(), lr=1e-4)
        with np.load(folder / "vae_inputs.npz") as f:
            self.inputs = {k: backend.to_device(f[k]) for k in f.files}

    def forward(self):
        from minildm import no_grad
        with no_grad():
            out = self.model.decode(self.model.encode(self.inputs["images"]).mean)
        self._sync()
        return self.backend.to_host(out.data)

    def train_step(self):
        from minildm.nn import functional as F
        self.optimizer.zero_grad()
        posterior = self.model.encode(self.inputs["images"])
        z = posterior.mean + posterior.std * self.inputs["eps"]  # reparameterised sample with the given noise
        reconstruction = self.model.decode(z)
        loss = F.mse_loss(reconstruction, self.inputs["images"]) + KL_WEIGHT * posterior.kl().mean() / z[0].size
        loss.backward()
        self.optimizer.step()
        self._sync()
        return loss.item()


class TorchVAERunner(TorchRunner):
    def __init__(self, folder: Path):
        import torch
        from diffusers import AutoencoderKL
        from safetensors.torch import load_file

        self.torch = torch
        self.model = AutoencoderKL(**VAE_CONFIG)
        self.model.load_state_dict(load_file(str(folder / "vae.safetensors")), strict=True)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=1e-4)
        with np.load(folder / "vae_inputs.npz") as f:
            self.inputs = {k: torch.from_numpy(f[k]) for k in f.files}

    def forward(self):
        with self.torch.no_grad():
            return self.model.decode(self.model.encode(self.inputs["images"]).latent_dist.mean).sample.numpy()

    def train_step(self):
        self.optimizer.zero_grad()
        posterior = self.model.encode(self.inputs["images"]).latent_dist
        z = posterior.mean + posterior.std * self.inputs["eps"]
        reconstruction = self.model.decode(z).sample
        loss = (self.torch.nn.functional.mse_loss(reconstruction, self.inputs["images"])
                + KL_WEIGHT * posterior.kl().mean() / z[0].numel())
        loss.backward()
        self.optimizer.step()
        return loss.item()


RUNNERS = {"unet": {"minildm": MinildmRunner, "torch": TorchRunner},
           "vae": {"minildm": MinildmVAERunner, "torch": TorchVAERunner}}


def _status_mib(key: str) -> float:
    """A memory figure of this process from /proc/self/status ("VmRSS": resident now, "VmHWM": peak), in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024  # the kernel reports kB
    raise RuntimeError(f"no {key} in /proc/self/status")


def memory_worker(model: str, library: str, mode: str, folder: Path) -> dict:
    """Run in a fresh process: peak RSS growth over two runs, and (minildm) the tracemalloc peak of one run."""
    runner = RUNNERS[model][library](folder)
    run = runner.train_step if mode == "train" else runner.forward
    before = _status_mib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    run()
    run()
    result = {"rss_mib": _status_mib("VmHWM") - before}
    if library == "minildm":
        tracemalloc.start()
        run()  # a third run: the optimizer state exists already, as in steady training
        tracemalloc.reset_peak()
        start = tracemalloc.get_traced_memory()[0]
        run()
        result["traced_mib"] = (tracemalloc.get_traced_memory()[1] - start) / 2**20
        tracemalloc.stop()
    return result


def measure_memory(model: str, library: str, mode: str, folder: Path) -> dict:
    cmd = [sys.executable, __file__, "--memory-worker", model, library, mode, str(folder)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def time_blocks(runners: dict, mode: str, rounds: int, warmup: int, reps: int) -> dict:
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            run = runner.train_step if mode == "train" else runner.forward
            time.sleep(0.5)  # let the other library's BLAS/OpenMP threads go idle
            for i in range(warmup + reps):
                start = time.perf_counter()
                run()
                if i >= warmup:
                    times[name].append(time.perf_counter() - start)
    return {name: (float(np.median(t)), float(np.min(t))) for name, t in times.items()}


def profile_minildm(runner, steps: int = 3, top: int = 15):
    """cProfile of minildm's training step, the functions with the most time of their own."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(steps):
        runner.train_step()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt / steps
    print(f"\nminildm training step, cProfile over {steps} steps: {total * 1e3:.0f} ms per step (with profiling "
          f"overhead); by own time:")
    rows = sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]
    for (file, line, func), (_, ncalls, tottime, cumtime, _) in rows:
        where = f"{Path(file).parent.name}/{Path(file).name}:{line}({func})" if line else func
        print(f"  {tottime / steps * 1e3:8.1f} ms/step {100 * tottime / stats.total_tt:5.1f}%  "
              f"{ncalls // steps:5d} calls/step  {where}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating blocks per library")
    parser.add_argument("--warmup", type=int, default=1, help="untimed runs at the start of each block")
    parser.add_argument("--reps", type=int, default=3, help="timed runs per block")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory subprocesses")
    parser.add_argument("--no-profile", action="store_true", help="skip the cProfile of minildm")
    parser.add_argument("--model", choices=("unet", "vae", "both"), default="both")
    parser.add_argument("--memory-worker", nargs=4, metavar=("MODEL", "LIB", "MODE", "DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        model, library, mode, folder = args.memory_worker
        print(json.dumps(memory_worker(model, library, mode, Path(folder))))
        return

    import torch
    from minildm import backend

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count())))
    print(f"minildm backend: {backend.name()}, OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'all cores')}; "
          f"torch {torch.__version__} CPU, {torch.get_num_threads()} threads; {args.rounds} x {args.reps} runs each; "
          f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for model in ("unet", "vae") if args.model == "both" else (args.model,):
            (make_problem if model == "unet" else make_vae_problem)(folder)
            runners = {name: cls(folder) for name, cls in RUNNERS[model].items()}
            ours, theirs = runners["minildm"].forward(), runners["torch"].forward()
            err = np.abs(ours - theirs).max() / np.abs(theirs).max()
            params = sum(p.size for p in runners["minildm"].model.parameters())
            if model == "unet":
                print(f"\nUNet2DConditionModel {CONFIG['block_out_channels']}, {params / 1e6:.2f}M parameters, batch "
                      f"{BATCH} x 4x8x8 latents, {TOKENS} context tokens; same weights, max relative difference of the "
                      f"predictions {err:.1e}")
            else:
                print(f"\nAutoencoderKL {VAE_CONFIG['block_out_channels']}, {params / 1e6:.2f}M parameters, batch "
                      f"{VAE_BATCH} x 3x32x32 images <-> 4x8x8 latents; same weights, max relative difference of the "
                      f"reconstructions {err:.1e}")
            print(f"{'':<34}{'median':^26}  {'best run':^26}")
            print(f"{'':<34}{'minildm':>10}{'torch':>10}{'ratio':>6}  {'minildm':>10}{'torch':>10}{'ratio':>6}")
            for mode, label in (("train", "training step (fwd+bwd+AdamW)"), ("forward", "forward (no_grad)")):
                t = time_blocks(runners, mode, args.rounds, args.warmup, args.reps)
                (ours, ours_best), (theirs, theirs_best) = t["minildm"], t["torch"]
                print(f"{label:<34}{ours * 1e3:8.0f}ms{theirs * 1e3:8.0f}ms{ours / theirs:5.2f}x  "
                      f"{ours_best * 1e3:8.0f}ms{theirs_best * 1e3:8.0f}ms{ours_best / theirs_best:5.2f}x")
            if not args.no_memory:
                print("peak memory above the set-up state (fresh subprocess each; see the module docstring)")
                for mode in ("train", "forward"):
                    m, p = measure_memory(model, "minildm", mode, folder), measure_memory(model, "torch", mode, folder)
                    print(f"  {mode:<8} peak RSS: minildm {m['rss_mib']:7.0f} MiB, torch {p['rss_mib']:7.0f} MiB;  "
                          f"minildm traced arrays: {m['traced_mib']:.0f} MiB")
            if not args.no_profile and model == "unet":
                profile_minildm(runners["minildm"])

if __name__ == "__main__":
    main()
