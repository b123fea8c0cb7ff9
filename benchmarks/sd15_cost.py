"""What one Stable Diffusion v1.5 512x512 image costs on a CPU with minildm: measured on the real architecture.

Builds the three SD v1.5 networks at full size from their published configs (random weights: the cost of a forward
pass does not depend on the weight values), times each part once, and adds them up for a 50-step sampling run with
classifier-free guidance (the U-Net sees a batch of 2 at every step):

    total ≈ text encoder (batch 2) + 50 x U-Net (batch 2, 64x64x4 latents) + VAE decoder (1 latent -> 512x512)

Peak memory is the process's peak resident set size (``ru_maxrss``), weights included (float32: ~4.3 GB).

    python benchmarks/sd15_cost.py                 # ~3-10 minutes on 2 cores, ~8 GB of RAM

To run real Stable Diffusion with minildm you need a local diffusers folder (e.g. a copy of
"stable-diffusion-v1-5" with unet/ vae/ text_encoder/ tokenizer/ scheduler/ model_index.json):

    from minildm.pipelines import StableDiffusionPipeline
    pipe = StableDiffusionPipeline.from_pretrained("path/to/stable-diffusion-v1-5")
    image = pipe("an astronaut riding a horse", num_inference_steps=50, generator=0)
"""
import resource
import time

from minildm import Tensor, backend, no_grad
from minildm.models import AutoencoderKL, CLIPTextModel, UNet2DConditionModel

SD15_UNET = dict(sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
                 block_out_channels=(320, 640, 1280, 1280),
                 down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D",
                                   "DownBlock2D"),
                 up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
                 cross_attention_dim=768, attention_head_dim=8, norm_num_groups=32)
SD15_VAE = dict(in_channels=3, out_channels=3, latent_channels=4, layers_per_block=2, sample_size=512,
                block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=32, scaling_factor=0.18215)
SD15_TEXT = dict(vocab_size=49408, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                 num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768)


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def timed(label, fn):
    began = time.perf_counter()
    out = fn()
    seconds = time.perf_counter() - began
    print(f"{label:<42s} {seconds:8.2f} s   peak RSS so far {peak_gb():5.1f} GB", flush=True)
    return out, seconds


def main():
    xp, rng = backend.xp(), backend.rng(0)
    text, _ = timed("build CLIP text encoder (123M params)", lambda: CLIPTextModel.from_config(SD15_TEXT))
    unet, _ = timed("build U-Net (860M params)", lambda: UNet2DConditionModel.from_config(SD15_UNET))
    vae, _ = timed("build VAE (84M params)", lambda: AutoencoderKL.from_config(SD15_VAE))
    ids = xp.asarray(rng.integers(0, 49406, size=(2, 77)))
    latents = Tensor(rng.standard_normal((2, 4, 64, 64), dtype=backend.DEFAULT_DTYPE))
    with no_grad():
        context, t_text = timed("text encoder, batch 2 x 77 tokens", lambda: text(ids).last_hidden_state)
        _, t_unet = timed("U-Net step, batch 2 (guidance), 64x64", lambda: unet(latents, 500, context))
        _, t_vae = timed("VAE decode, 1 latent -> 512x512 image", lambda: vae.decode(latents[:1]))
    total = t_text + 50 * t_unet + t_vae
    print(f"\nestimated 512x512 image, 50 steps with guidance: {total / 60:.1f} min "
          f"(= {t_text:.1f} s + 50 x {t_unet:.1f} s + {t_vae:.1f} s); peak RSS {peak_gb():.1f} GB")


if __name__ == "__main__":
    main()
