"""The scene world and the shape scenes: exact masks, disjoint splits, seeded streams."""

import hashlib

import pytest
import torch
import torch.nn.functional as F

from lejepa_viz.data import load_dataset
from lejepa_viz.data.bundled import TEST_TEXTURES, TRAIN_TEXTURES
from lejepa_viz.data.datasets import scene_world
from lejepa_viz.data.scenes import CHUNK, SceneWorld
from lejepa_viz.data.shapes import shape_scenes


def _world(items=None, **options):
    """A small world: 8 random items (blobs of varied intensity) on 3 random textures."""
    if items is None:
        g = torch.Generator().manual_seed(0)
        items = (torch.rand(8, 1, 28, 28, generator=g) > 0.4).to(torch.uint8) * 255
    g = torch.Generator().manual_seed(1)
    textures = torch.randint(0, 256, (3, 3, 48, 48), generator=g, dtype=torch.uint8)
    return SceneWorld(items, torch.arange(len(items)), textures, size=32, backgrounds=4, **options)


def test_the_mask_is_exactly_where_the_objects_changed_the_pixels():
    """The same stream with every item blanked draws the same backgrounds and nothing on them;
    the pixels the objects changed are the mask's (a fill may match its background by chance,
    rarely)."""
    world, blank = _world(), _world(items=torch.zeros(8, 1, 28, 28, dtype=torch.uint8))
    scenes, background = world.render(0, 200), blank.render(0, 200)
    assert not background.masks.any()
    changed = (scenes.images != background.images).any(1)  # (N, S, S)
    assert not (changed & ~scenes.masks).any()  # nothing changed outside the mask
    assert (scenes.masks & ~changed).float().mean() < 0.01 * scenes.masks.float().mean()
    covered = scenes.masks.float().mean((1, 2))
    assert (covered > 0).all() and covered.mean() < 0.6


def test_the_stream_is_seeded_and_chunked_the_same_way_for_any_range():
    world = _world()
    whole = world.render(CHUNK - 5, 10)  # across a chunk boundary
    again = _world().render(CHUNK - 5, 10)
    part = world.render(CHUNK - 2, 3)
    for field in ("images", "masks", "labels"):
        assert torch.equal(getattr(whole, field), getattr(again, field))
        assert torch.equal(getattr(whole, field)[3:6], getattr(part, field))
    other = _world(seed=1).render(CHUNK - 5, 10)
    assert not torch.equal(other.images, whole.images)
    assert len(world.render(7, 0)) == 0
    with pytest.raises(ValueError, match="items must be uint8"):
        SceneWorld(
            torch.zeros(2, 28, 28), torch.arange(2), torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
        )


def test_crossing_moves_one_object_over_a_still_background():
    clip = _world().crossing(num_frames=12)
    assert clip.images.shape == (12, 3, 32, 32) and clip.masks.shape == (12, 32, 32)
    ys, xs = torch.meshgrid(torch.arange(32.0), torch.arange(32.0), indexing="ij")
    centre_x = (clip.masks * xs).sum((1, 2)) / clip.masks.sum((1, 2))
    assert centre_x[6] - centre_x[0] > 5  # left to right, then back
    still = ~clip.masks.any(0)  # never covered: the background, the same in every frame
    assert (clip.images[:, :, still] == clip.images[:1, :, still]).all()


def _digests(images):
    return {hashlib.sha1(x.numpy().tobytes()).hexdigest() for x in images}


def test_the_held_out_world_shares_no_item_and_no_texture_with_the_training_one():
    assert not set(TRAIN_TEXTURES) & set(TEST_TEXTURES)
    train, test = scene_world("train", 32), scene_world("test", 32)
    assert len(train.items) == 60_000 + 1437 and len(test.items) == 10_000 + 360
    fashion_train = load_dataset("fashion-mnist", "train").images
    shared = _digests(train.items) & _digests(test.items)
    # Fashion-MNIST itself holds a few byte-identical images across its splits; nothing more
    assert len(shared) <= len(
        _digests(fashion_train) & _digests(load_dataset("fashion-mnist", "test").images)
    )
    assert not torch.equal(train.textures, test.textures[: len(train.textures)])
    scenes = load_dataset("scenes:64", "test", image_size=32)
    assert scenes.images.shape == (64, 3, 32, 32) and scenes.masks.shape == (64, 32, 32)
    assert torch.equal(scenes.images, test.render(0, 64).images)
    assert scenes.labels.max() < len(scenes.classes) == 20


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
    images, masks = shape_scenes(12, size=32, seed=3, photos=_flat_photos())
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
    images, masks = shape_scenes(6, size=24, seed=1, photos=photos, crop=(1.0, 1.0))
    # crop=1: each texture is the whole photo, resized the way shape_scenes resizes it
    resized = F.interpolate(photos.float(), size=(24, 24), mode="bilinear", antialias=True)
    whole = resized.round().clamp(0, 255).to(torch.uint8)
    for img, m in zip(images, masks, strict=True):
        matches = [(img == w).all(0) for w in whole]  # (24, 24) per photo
        a, b = (torch.equal(matches[k][m], torch.ones_like(m[m])) for k in (0, 1))
        assert a != b, "object pixels come from exactly one photo"
        obj = 0 if a else 1
        assert matches[1 - obj][~m].all(), "background pixels come from the other photo"


def test_deterministic_by_seed():
    a = shape_scenes(5, size=32, seed=7, photos=_photos())
    b = shape_scenes(5, size=32, seed=7, photos=_photos())
    c = shape_scenes(5, size=32, seed=8, photos=_photos())
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert not torch.equal(a[1], c[1])


def test_several_shapes_and_bad_arguments():
    _, one = shape_scenes(20, size=32, seed=0, photos=_photos())
    _, three = shape_scenes(20, size=32, seed=0, photos=_photos(), num_shapes=3)
    assert three.float().mean() > one.float().mean()
    with pytest.raises(ValueError, match="shapes"):
        shape_scenes(2, shapes=("star",), photos=_photos())
    with pytest.raises(ValueError, match="photos"):
        shape_scenes(2, photos=_photos(1))
