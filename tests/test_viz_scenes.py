"""Synthetic scenes with known masks and the first-component IoU, against independent truth."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from lejepa_viz.model import Encoder
from lejepa_viz.viz.scenes import (
    first_component_iou,
    first_component_score,
    make_scenes,
    mask_iou,
    scene_iou,
)


def _photos(n=3, size=48):
    """Tiny photos, each a distinct pattern, so the textures cut from them are recognisable."""
    g = torch.Generator().manual_seed(0)
    return torch.randint(0, 256, (n, 3, size, size), generator=g, dtype=torch.uint8)


def _flat_photos(size=32):
    """Two flat photos: one pure red, one pure blue (object and background colour is known)."""
    red = torch.zeros(3, size, size, dtype=torch.uint8)
    red[0] = 255
    blue = torch.zeros(3, size, size, dtype=torch.uint8)
    blue[2] = 255
    return torch.stack([red, blue])


def test_shapes_dtypes_and_masks_are_the_pasted_pixels():
    images, masks = make_scenes(12, size=32, seed=3, photos=_flat_photos())
    assert images.shape == (12, 3, 32, 32) and images.dtype == torch.uint8
    assert masks.shape == (12, 32, 32) and masks.dtype == torch.bool
    for img, m in zip(images, masks, strict=True):
        assert 0 < m.sum() < m.numel()
        # the object is one flat photo, the background the other: every mask pixel has the
        # object's colour and every other pixel the background's
        obj = img[:, m].T.unique(dim=0)
        bg = img[:, ~m].T.unique(dim=0)
        assert len(obj) == 1 and len(bg) == 1 and not torch.equal(obj, bg)


def test_object_pixels_come_from_the_object_texture():
    photos = _photos(2, 48)  # two photos: the object texture is cut from the other photo
    images, masks = make_scenes(6, size=24, seed=1, photos=photos, crop=(1.0, 1.0))
    # crop=1: each texture is the whole photo, resized the way make_scenes resizes it
    resized = F.interpolate(photos.float(), size=(24, 24), mode="bilinear", antialias=True)
    whole = resized.round().clamp(0, 255).to(torch.uint8)
    for img, m in zip(images, masks, strict=True):
        matches = [(img == w).all(0) for w in whole]  # (24, 24) per photo
        a, b = (torch.equal(matches[k][m], torch.ones_like(m[m])) for k in (0, 1))
        assert a != b, "object pixels come from exactly one photo"
        obj = 0 if a else 1
        assert matches[1 - obj][~m].all(), "background pixels come from the other photo"


def test_deterministic_by_seed():
    a = make_scenes(5, size=32, seed=7, photos=_photos())
    b = make_scenes(5, size=32, seed=7, photos=_photos())
    c = make_scenes(5, size=32, seed=8, photos=_photos())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_several_shapes_and_bad_arguments():
    _, one = make_scenes(20, size=32, seed=0, photos=_photos())
    _, three = make_scenes(20, size=32, seed=0, photos=_photos(), num_shapes=3)
    assert three.float().mean() > one.float().mean()
    with pytest.raises(ValueError, match="shapes"):
        make_scenes(2, shapes=("star",), photos=_photos())
    with pytest.raises(ValueError, match="photos"):
        make_scenes(2, photos=_photos(1))


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


def test_first_component_iou_is_one_on_two_separated_clusters():
    masks = _block_masks()
    tokens = _cluster_tokens(masks, patch=8)
    assert first_component_iou(tokens, masks) == pytest.approx(1.0)
    score = first_component_score(tokens, masks)
    assert score.oracle_iou == pytest.approx(1.0) and score.maps.shape == (8, 4, 4)
    assert first_component_iou(tokens, masks, per_image=True) == pytest.approx(1.0)
    # the sign rule does not read the masks: flipping the tokens gives the same answer
    assert first_component_iou(-tokens, masks) == pytest.approx(1.0)


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


def test_first_component_iou_is_low_on_noise_and_the_oracle_takes_the_better_sign():
    masks = _block_masks(n=32)
    noise = torch.randn(32, 4, 4, 16, generator=torch.Generator().manual_seed(1))
    score = first_component_score(noise, masks)
    rule, plus, minus = numpy_first_component_ious(noise, masks)
    assert score.iou == pytest.approx(rule.mean()) and score.iou < 0.4
    assert score.oracle_iou == pytest.approx(max(plus.mean(), minus.mean()))
    np.testing.assert_allclose(score.ious.numpy(), rule, rtol=1e-6)
    assert first_component_iou(noise, masks, per_image=True) < 0.4


def test_first_component_iou_of_real_scenes_is_the_numpy_computation():
    images, masks = make_scenes(6, size=32, seed=0, photos=_photos())
    patches = images.float().unfold(2, 8, 8).unfold(3, 8, 8)  # (N, 3, 4, 4, 8, 8)
    tokens = patches.permute(0, 2, 3, 1, 4, 5).flatten(3)  # raw pixels of each 8x8 patch
    rule, _, _ = numpy_first_component_ious(tokens, masks)
    assert first_component_iou(tokens, masks) == pytest.approx(rule.mean(), abs=1e-6)


def test_scene_iou_scores_the_encoder_its_random_init_and_raw_pixels():
    torch.manual_seed(0)  # the same weights as scene_iou's random-init reference
    enc = Encoder.build("vit_pico_patch8", 3, 32, mean=(0.5,) * 3, std=(0.25,) * 3).eval()
    every = scene_iou(enc, num_scenes=6, size=32, seed=3)
    scores = every["joint"]
    assert scores["trained"].iou == scores["random"].iou  # the random twin has these weights
    assert every["attention"]["trained"] == every["attention"]["random"]
    assert set(every["per-image"]) == {"trained", "random", "pixels"}
    images, masks = make_scenes(6, size=32, seed=3)
    pixels = torch.stack(
        [  # (N, 4, 4, 3·8·8): each 8 x 8 patch's pixels, patch by patch
            torch.stack(
                [
                    torch.stack(
                        [img[:, 8 * i : 8 * i + 8, 8 * j : 8 * j + 8].reshape(-1) for j in range(4)]
                    )
                    for i in range(4)
                ]
            )
            for img in images.float()
        ]
    )
    assert scores["pixels"].iou == first_component_score(pixels, masks).iou
    rule, plus, minus = numpy_first_component_ious(pixels, masks)
    assert scores["pixels"].iou == pytest.approx(rule.mean(), abs=1e-6)
    assert scores["pixels"].oracle_iou == pytest.approx(max(plus.mean(), minus.mean()), abs=1e-6)
