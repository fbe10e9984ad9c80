"""The IoU of patch-feature maps with true masks, against brute force and numpy."""

import itertools

import numpy as np
import pytest
import torch

from lejepa_viz.data.shapes import shape_scenes
from lejepa_viz.distributed import seeded
from lejepa_viz.model import Encoder, cls_attention
from lejepa_viz.viz.scenes import (
    bootstrap,
    component_score,
    grid_iou,
    iou_table,
    mask_iou,
    pixel_tokens,
    scene_iou,
    verdict,
)


def _half(cols):
    m = torch.zeros(4, 4, dtype=torch.bool)
    m[:, cols] = True
    return m


def test_mask_iou_closed_forms():
    a = _half(slice(0, 2))
    assert mask_iou(a, a) == 1.0
    assert mask_iou(a, ~a) == 0.0
    assert mask_iou(a, _half(slice(1, 3))) == pytest.approx(1 / 3)  # 4 of 12 pixels
    assert mask_iou(a, _half(slice(0, 1))) == pytest.approx(1 / 2)  # a subset of half of it
    empty = torch.zeros(4, 4, dtype=torch.bool)
    assert mask_iou(empty, empty) == 1.0
    assert mask_iou(empty, a) == 0.0
    batch = mask_iou(torch.stack([a, a, empty]), torch.stack([a, ~a, empty]))
    assert batch.tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="one shape"):
        mask_iou(a, a[:2])


def _cluster_tokens(masks, patch, dim=16, spread=0.05, seed=0):
    """Tokens (N, h, w, dim): object patches near one point, background patches near another."""
    g = torch.Generator().manual_seed(seed)
    patch_mask = masks[:, ::patch, ::patch]  # the object/background label of each patch
    centre_obj, centre_bg = torch.randn(dim, generator=g), torch.randn(dim, generator=g)
    tokens = torch.where(patch_mask[..., None], centre_obj, centre_bg)
    return tokens + spread * torch.randn(tokens.shape, generator=g)


def _block_masks(n=8, size=32, seed=0):
    """Masks that are unions of 8x8 blocks (so a patch grid can match them exactly), the object
    kept off the border (the sign rule's assumption)."""
    g = torch.Generator().manual_seed(seed)
    masks = torch.zeros(n, size, size, dtype=torch.bool)
    for i in range(n):
        r, c = torch.randint(1, 2, (2,), generator=g).tolist()
        h, w = torch.randint(1, 3, (2,), generator=g).tolist()
        masks[i, 8 * r : 8 * (r + h), 8 * c : 8 * (c + w)] = True
    return masks


def test_first_component_is_one_on_two_separated_clusters_whatever_the_sign():
    masks = _block_masks()
    tokens = _cluster_tokens(masks, patch=8)
    for per_image in (False, True):
        for sign in (1, -1):  # the sign rule reads no mask
            score = component_score(sign * tokens, masks, per_image)
            assert score.iou == pytest.approx(1.0) and score.oracle == pytest.approx(1.0)


def numpy_first_component_ious(tokens, masks):
    """Per-image IoUs of the thresholded first principal component, written out with numpy's
    SVD: ``(rule sign, +1, -1)``, each (N,). The rule: border patches below centre patches."""
    N, h, w, F = tokens.shape
    x = tokens.double().numpy().reshape(-1, F)
    x = x - x.mean(0)
    pc1 = (x @ np.linalg.svd(x, full_matrices=False)[2][0]).reshape(N, h, w)
    border = np.ones((h, w), bool)
    border[1:-1, 1:-1] = False
    centre = np.zeros((h, w), bool)
    centre[h // 4 : h - h // 4, w // 4 : w - w // 4] = True
    rule = 1.0 if pc1[:, border].mean() <= pc1[:, centre].mean() else -1.0
    scale = masks.shape[-1] // w
    truth = masks.numpy()

    def ious(sign):
        pred = (sign * pc1 > 0).repeat(scale, 1).repeat(scale, 2)  # nearest upsampling
        inter, union = (pred & truth).sum((1, 2)), (pred | truth).sum((1, 2))
        return np.where(union > 0, inter / np.maximum(union, 1), 1.0)

    return ious(rule), ious(1.0), ious(-1.0)


def test_first_component_on_noise_and_on_real_scenes_is_the_numpy_computation():
    masks = _block_masks(n=32)
    noise = torch.randn(32, 4, 4, 16, generator=torch.Generator().manual_seed(1))
    score = component_score(noise, masks)
    rule, plus, minus = numpy_first_component_ious(noise, masks)
    np.testing.assert_allclose(score.ious.numpy(), rule, rtol=1e-6)
    assert score.iou < 0.4 and score.oracle == pytest.approx(max(plus.mean(), minus.mean()))
    images, masks = shape_scenes(6, size=32, seed=0)
    rule, _, _ = numpy_first_component_ious(pixel_tokens(images, 8), masks)
    assert component_score(pixel_tokens(images, 8), masks).iou == pytest.approx(rule.mean())


def test_pixel_tokens_and_grid_iou_against_loops():
    images = torch.randint(0, 256, (2, 3, 8, 8), generator=torch.Generator().manual_seed(0))
    tokens = pixel_tokens(images, 4)
    for n, i, j in itertools.product(range(2), range(2), range(2)):
        expected = images[n, :, 4 * i : 4 * i + 4, 4 * j : 4 * j + 4].reshape(-1).float()
        assert torch.equal(tokens[n, i, j], expected)
    kept = torch.tensor([[[True, False], [False, True]]])
    truth = torch.zeros(1, 8, 8, dtype=torch.bool)
    truth[0, :4, :6] = True  # 24 pixels; the kept patches cover [:4, :4] and [4:, 4:]
    inter = sum(1 for y in range(8) for x in range(8) if truth[0, y, x] and kept[0, y // 4, x // 4])
    union = sum(1 for y in range(8) for x in range(8) if truth[0, y, x] or kept[0, y // 4, x // 4])
    assert grid_iou(kept, truth).item() == pytest.approx(inter / union)


def test_bootstrap_matches_the_exact_resampling_distribution():
    """All 27 resamples of three values are equally likely; the 20 % and 80 % points of their
    means (chosen away from the distribution's steps) are what a large bootstrap returns."""
    values = torch.tensor([0.0, 1.0, 3.0])
    means = np.array(sorted(sum(c) / 3 for c in itertools.product(values.tolist(), repeat=3)))
    cdf = np.arange(1, 28) / 27

    def exact(q):
        return means[np.argmax(cdf >= q)]

    low, high = bootstrap(values, resamples=40_000, level=0.6, seed=1)
    assert low == pytest.approx(exact(0.2)) and high == pytest.approx(exact(0.8))
    with pytest.raises(ValueError, match="level"):
        bootstrap(values, level=1.0)


def _brute_attention_ious(enc, images, masks, keep=0.6):
    """DINO's masks by sorting each image's mean-head [CLS] attention, IoU by counting."""
    with torch.no_grad():
        rows = cls_attention(enc, images.float() / 255).mean(1)  # (N, P)
    h = int(rows.shape[1] ** 0.5)
    out = []
    for row, truth in zip(rows.double(), masks, strict=True):
        order = row.argsort(descending=True)
        share, total, kept = row / row.sum(), 0.0, torch.zeros_like(row, dtype=torch.bool)
        for p in order.tolist():
            if total >= keep:
                break
            kept[p], total = True, total + share[p].item()
        scale = truth.shape[-1] // h
        pred = kept.view(h, h).repeat_interleave(scale, 0).repeat_interleave(scale, 1)
        out.append(((pred & truth).sum() / (pred | truth).sum()).item())
    return out


def test_scene_iou_scores_the_encoder_beside_its_random_twin_and_raw_pixels():
    with seeded(0):  # the weights of scene_iou's random-init reference
        enc = Encoder.build("vit_pico_patch8", 3, 32, mean=(0.5,) * 3, std=(0.25,) * 3).eval()
    images, masks = shape_scenes(6, size=32, seed=3)
    every = scene_iou(enc, images, masks, resamples=200)
    assert every["num_scenes"] == 6 and every["size"] == 32
    for kind in ("joint", "per-image", "attention"):
        same = every[kind]["trained"], every[kind]["random"]
        assert torch.equal(same[0].ious, same[1].ious)  # the random twin has these weights
        for score in every[kind].values():
            assert score.low <= score.iou <= score.high
    assert "pixels" not in every["attention"]
    pixels = every["per-image"]["pixels"]
    assert torch.equal(pixels.ious, component_score(pixel_tokens(images, 8), masks, True).ious)
    expected = _brute_attention_ious(enc, images, masks)
    np.testing.assert_allclose(every["attention"]["trained"].ious.numpy(), expected, rtol=1e-5)
    table = iou_table(every)
    assert len(table) == 5 and "raw patch pixels" in table[0] and "| [CLS] attention |" in table[4]
    assert "does not beat" in verdict(every)
    with pytest.raises(ValueError, match="masks must be"):
        scene_iou(enc, images, masks[:3])


def test_the_verdict_names_wins_and_losses_against_the_references():
    from types import SimpleNamespace as Score

    iou = {
        "joint": {
            "trained": Score(iou=0.15, low=0.14, high=0.16),
            "random": Score(iou=0.17, low=0.165, high=0.18),
            "pixels": Score(iou=0.16, low=0.15, high=0.17),
        },
        "per-image": {
            "trained": Score(iou=0.37, low=0.35, high=0.39),
            "random": Score(iou=0.30, low=0.28, high=0.31),
            "pixels": Score(iou=0.29, low=0.27, high=0.30),
        },
        "attention": {
            "trained": Score(iou=0.20, low=0.18, high=0.22),
            "random": Score(iou=0.21, low=0.19, high=0.23),
        },
    }
    said = verdict(iou)
    assert said.startswith(
        "Training beats random initialisation and raw pixels beyond the "
        "intervals for: PCA, one fit per image (+0.070)."
    )
    assert "PCA, one fit for all (0.150 against random init's 0.170, beyond the intervals)" in said
    assert "[CLS] attention (0.200 against random init's 0.210, within the intervals)" in said
    assert "one fit per image (0.3" not in said  # no loss where it wins
