"""Prompts → the U-Net's context, and classifier-free guidance (Ho & Salimans 2022).

Classifier-free guidance trains one model both with and without its caption (the caption is dropped, i.e. replaced
by "", for a fraction of the training examples), so at sampling time it can predict the noise both ways:
ε_c = ε(x_t, c) with the prompt and ε_u = ε(x_t, ∅) without. Extrapolating from ε_u through ε_c,

    ε̃ = ε_u + s (ε_c − ε_u)                                    Ho & Salimans 2022, eq. 6, with s = 1 + w

pushes each sample towards what makes the prompt *more* likely than no prompt: s = 1 is the plain conditional
model, s > 1 trades diversity for fidelity to the prompt (Stable Diffusion's usual s is 7.5). A *negative prompt*
takes the place of "" in ε_u, so the sample is pushed away from it as well.

The two predictions cost one U-Net call, not two: the latents go in twice, stacked along the batch, against the
stacked contexts [unconditional; conditional] — the layout ``encode_prompts`` returns and
``classifier_free_guidance`` splits again.
"""
from __future__ import annotations

import warnings

from .. import backend


def is_guided(guidance_scale: float) -> bool:
    """True when the unconditional branch is needed: s > 1. For s ≤ 1 the pipelines run the conditional branch
    alone (as diffusers does: at s = 1 eq. 6 is exactly ε_c, and s < 1 is not used in practice)."""
    return guidance_scale > 1.0


def prompt_list(prompt, name: str = "prompt") -> list[str]:
    """A prompt (str) or prompts (list of str) as a non-empty list of strings, with errors in the user's terms.

    "" is a valid prompt (the unconditional one, the model's "anything"); an empty list or None is not.
    """
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, (list, tuple)):
        if not prompt:
            raise ValueError(f"{name}: got an empty list; pass at least one prompt")
        bad = [p for p in prompt if not isinstance(p, str)]
        if bad:
            raise TypeError(f"{name}: every prompt must be a string, got {type(bad[0]).__name__} ({bad[0]!r})")
        return list(prompt)
    if prompt is None:
        raise ValueError(f"{name}: a prompt is required, e.g. \"a red circle at the top left\"")
    raise TypeError(f"{name}: expected a string or a list of strings, got {type(prompt).__name__}")


def negative_prompt_list(negative_prompt, batch: int) -> list[str]:
    """The unconditional prompts, one per prompt: "" when none is given; one string is used for every prompt."""
    if negative_prompt is None:
        return [""] * batch
    negatives = prompt_list(negative_prompt, "negative_prompt")
    if len(negatives) == 1:
        return negatives * batch
    if len(negatives) != batch:
        raise ValueError(f"negative_prompt: got {len(negatives)} negative prompts for {batch} prompts; pass one "
                         "string, or a list with one negative prompt per prompt")
    return negatives


def encode_text(tokenizer, text_encoder, texts: list[str]):
    """Texts → the text encoder's last hidden states, a backend array (len(texts), 77, D).

    Every text is padded (with <|endoftext|>) and truncated to the tokenizer's 77 tokens, and no attention mask is
    passed: the text encoder and the U-Net see the padding tokens' states too, as in Stable Diffusion's training.
    """
    limit = tokenizer.model_max_length
    too_long = [t for t in texts if len(tokenizer.encode(t)) > limit]
    if too_long:
        warnings.warn(f"prompt longer than the text encoder's {limit} tokens, the end is cut off: {too_long[0]!r}",
                      stacklevel=3)
    ids = tokenizer(texts, padding="max_length", max_length=limit, truncation=True).input_ids  # (N, 77) int64
    return text_encoder(ids).last_hidden_state.data


def encode_prompts(tokenizer, text_encoder, prompts: list[str], negative_prompts: list[str],
                   num_images_per_prompt: int, guided: bool):
    """The U-Net's context for B prompts and n images per prompt, a backend array:

        guided:     (2 B n, 77, D) = [ε_u contexts (B n); ε_c contexts (B n)]   (unconditional half first)
        not guided: (B n, 77, D)   = the ε_c contexts only

    Each prompt's row is repeated n times in a row (p0, p0, p1, p1 for n = 2), matching the order of the latents.
    Conditional and negative prompts go through the text encoder in a single call.
    """
    texts = (negative_prompts + prompts) if guided else prompts
    context = encode_text(tokenizer, text_encoder, texts)
    return backend.get_array_module(context).repeat(context, num_images_per_prompt, axis=0)


def classifier_free_guidance(noise_pred, guidance_scale: float):
    """ε̃ = ε_u + s (ε_c − ε_u) from the U-Net's output for the stacked batch [unconditional; conditional].

    noise_pred: (2 N, C, h, w), ε_u in the first half, ε_c in the second → returns (N, C, h, w).
    """
    half = noise_pred.shape[0] // 2
    noise_uncond, noise_cond = noise_pred[:half], noise_pred[half:]
    return noise_uncond + guidance_scale * (noise_cond - noise_uncond)  # Ho & Salimans 2022, eq. 6
