"""The Stable Diffusion networks: tokenizer, text encoder, U-Net, VAE (diffusers/transformers-compatible)."""
from .bpe import load_vocab, save_vocab, train_bpe
from .tokenizer import CLIPTokenizer

__all__ = ["CLIPTokenizer", "train_bpe", "save_vocab", "load_vocab"]
