"""The Stable Diffusion networks: tokenizer, text encoder, U-Net, VAE (diffusers/transformers-compatible)."""
from .bpe import load_vocab, save_vocab, train_bpe
from .modeling_utils import ModelMixin
from .pipeline_folder import load_components, save_components
from .text_encoder import CLIPTextModel, CLIPTextOutput
from .tokenizer import CLIPTokenizer
from .unet import UNet2DConditionModel
from .vae import AutoencoderKL, DiagonalGaussianDistribution

__all__ = ["CLIPTokenizer", "train_bpe", "save_vocab", "load_vocab", "ModelMixin", "AutoencoderKL",
           "DiagonalGaussianDistribution", "CLIPTextModel", "CLIPTextOutput", "load_components", "save_components",
           "UNet2DConditionModel"]
