"""The metrics see what they should: FD_minildm / KID grow as real images are blurred or noised more; CLIP score and
R-precision fall when captions are shuffled. Uses the shipped evaluation networks (see metrics_support)."""
import numpy as np
import pytest

from metrics_support import add_noise, eval_networks, gaussian_blur
from minildm.metrics import clip_score, frechet_distance_features, kernel_distance, r_precision
from minildm.metrics.evaluate import real_set

N = 300


@pytest.fixture(scope="module")
def sets():
    nets = eval_networks()
    images, captions = real_set(N, seed=0)
    reference, _ = real_set(N, seed=1)  # an independent real set: every distance is measured against it
    return nets, images, captions, nets.features(reference)


def distances(nets, reference, image_sets):
    fd = [frechet_distance_features(nets.features(x), reference) for x in image_sets]
    kid = [kernel_distance(nets.features(x), reference)["mean"] for x in image_sets]
    return fd, kid


@pytest.mark.parametrize("corrupt, levels", [(gaussian_blur, (0.6, 1.0, 1.5, 2.5)), (add_noise, (0.1, 0.2, 0.4, 0.8))],
                         ids=["blur", "noise"])
def test_distances_grow_with_corruption(sets, corrupt, levels):
    nets, images, _, reference = sets
    fd, kid = distances(nets, reference, [images] + [corrupt(images, level) for level in levels])
    print(f"{corrupt.__name__}: real-vs-real floor FD_minildm {fd[0]:.3f}, then {[round(f, 3) for f in fd[1:]]}; "
          f"KID_minildm {[round(k, 4) for k in kid]}")
    assert all(a < b for a, b in zip(fd, fd[1:])), f"FD_minildm not increasing: {fd}"
    assert all(a < b for a, b in zip(kid, kid[1:])), f"KID_minildm not increasing: {kid}"
    # At N = 300 the mildest level lifts FD only a little above the real-vs-real floor (the floor is FD's small-N
    # bias, about as large as the effect); the strongest stands far above it, for FD and for KID (floor about 0).
    assert fd[-1] > 3 * fd[0]
    assert kid[-1] > 10 * abs(kid[0])


def test_shuffled_captions_score_lower(sets):
    nets, images, captions, _ = sets
    image_embeds = nets.image_embeddings(images)
    shuffled = [captions[i] for i in np.random.default_rng(0).permutation(N)]
    right, wrong = nets.text_embeddings(captions), nets.text_embeddings(shuffled)
    score_right, score_wrong = clip_score(image_embeds, right), clip_score(image_embeds, wrong)
    rp_right, rp_wrong = r_precision(image_embeds, right, captions), r_precision(image_embeds, wrong, shuffled)
    print(f"CLIP score {score_right:.1f} -> {score_wrong:.1f} shuffled; R-precision {rp_right:.3f} -> {rp_wrong:.3f}")
    assert score_wrong < score_right - 10
    assert rp_right > 0.8 and rp_wrong < 0.2   # chance is 1/32 ≈ 0.03
