"""PCA patch-feature maps and their image input, against numpy's SVD, synthetic tokens with a
known object, and images whose pixels we chose."""

from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

from lejepa_viz.data import PHOTO_NAMES, photo_original
from lejepa_viz.model import Encoder
from lejepa_viz.model import patch_tokens as last_tokens
from lejepa_viz.viz.export import save_pairs
from lejepa_viz.viz.images import load_images
from lejepa_viz.viz.patches import patch_tokens
from lejepa_viz.viz.pca import fit_pca_maps, montage, object_sign, pca_maps, to_rgb

SIZE = 64  # test_vit at 64 px: a 4 x 4 patch grid of 64-dim tokens


@pytest.fixture(scope="module")
def encoder():
    torch.manual_seed(0)
    return Encoder.build("test_vit", 3, SIZE, mean=(0.5,) * 3, std=(0.25,) * 3).eval()


@pytest.fixture(scope="module")
def images():
    return torch.randint(
        0, 256, (5, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(1), dtype=torch.uint8
    )


def svd_pca(x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Projections (n, k) of rows x (n, F) on their top-k principal axes, and variance ratios."""
    xc = x - x.mean(0)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[:k].T, (s**2 / (s**2).sum())[:k]


def same_up_to_sign(a: np.ndarray, b: np.ndarray, **tol) -> None:
    for k in range(a.shape[-1]):
        sign = np.sign((a[..., k] * b[..., k]).sum())
        np.testing.assert_allclose(a[..., k], sign * b[..., k], **tol)


def object_tokens(n=3, grid=8, dim=6, seed=0, flip=False):
    """Tokens (n, grid, grid, dim): a centre square of object patches among background ones;
    the object/background difference dominates the variance. Returns (tokens, object mask)."""
    rng = np.random.default_rng(seed)
    mask = np.zeros((n, grid, grid), dtype=bool)
    mask[:, 2:6, 2:5] = True  # off-square, fewer object patches than background ones
    direction = np.eye(dim)[0] * (-5 if flip else 5)
    tokens = rng.normal(size=(n, grid, grid, dim)) * 0.3 + mask[..., None] * direction
    return tokens, mask


# --- patch tokens and the joint PCA ---------------------------------------------------------


def test_patch_tokens_are_the_encoders_in_batches_on_a_grid(encoder, images):
    tokens = patch_tokens(encoder, images, batch_size=2)
    expected = last_tokens(encoder, images.float() / 255).view(5, 4, 4, -1)
    assert tokens.shape == (5, 4, 4, encoder.embed_dim)
    torch.testing.assert_close(tokens, expected)
    torch.testing.assert_close(patch_tokens(encoder, images.float() / 255), expected)
    big = patch_tokens(encoder, images.repeat_interleave(2, -1).repeat_interleave(2, -2))
    assert big.shape == tokens.shape  # resized to the encoder's 64 px
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        patch_tokens(encoder, images.float())


def test_joint_pca_is_the_pca_of_all_patches_together(encoder, images):
    tokens = patch_tokens(encoder, images)
    maps = fit_pca_maps(tokens.double())
    flat = (last_tokens(encoder, images.float() / 255)).double().reshape(-1, encoder.embed_dim)
    proj, ratio = svd_pca(flat.numpy(), 3)
    same_up_to_sign(maps.components.reshape(-1, 3), proj, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(maps.explained_variance_ratio, ratio, rtol=1e-5)
    pc1 = maps.pc1.reshape(-1)
    assert abs(pc1.mean()) < 1e-5 and pc1.std() == pytest.approx(1, abs=1e-5)
    np.testing.assert_allclose(
        pc1 * proj[:, 0].std(), maps.components[..., 0].reshape(-1), rtol=1e-4, atol=1e-4
    )


def test_same_token_gets_the_same_colour_in_every_image():
    tokens = np.random.default_rng(0).normal(size=(2, 3, 3, 8))
    tokens[1, 2, 1] = tokens[0, 0, 0]
    tokens[1, 0, 2] = tokens[0, 1, 1]
    rgb = to_rgb(fit_pca_maps(tokens), 3)  # one pixel per patch
    np.testing.assert_array_equal(rgb[1, 2, 1], rgb[0, 0, 0])
    np.testing.assert_array_equal(rgb[1, 0, 2], rgb[0, 1, 1])
    assert (rgb[0, 0, 0] != rgb[0, 1, 1]).any()


@pytest.mark.parametrize("flip", [False, True])
def test_sign_rule_makes_the_centre_object_positive(flip):
    tokens, mask = object_tokens(flip=flip)
    pc1 = fit_pca_maps(tokens).pc1
    assert (pc1[mask] > 0).all() and (pc1[~mask] < 0).all()
    assert object_sign(-pc1) == -1.0 and object_sign(pc1) == 1.0


def test_foreground_mask_is_the_standardised_first_component_above_threshold():
    tokens, mask = object_tokens(seed=3)
    flat = tokens.reshape(-1, tokens.shape[-1])
    proj, _ = svd_pca(flat, 1)
    truth = proj[:, 0] / proj[:, 0].std()
    truth = truth * np.sign(truth[mask.reshape(-1)].mean())  # object positive, known here
    for threshold in (-1.0, 0.0, 0.5):
        maps = fit_pca_maps(tokens, foreground=True, threshold=threshold)
        np.testing.assert_array_equal(maps.mask.reshape(-1), truth > threshold)
    maps = fit_pca_maps(tokens, foreground=True, threshold=0.0)
    np.testing.assert_array_equal(maps.mask, mask)
    fg_proj, fg_ratio = svd_pca(flat[mask.reshape(-1)], 3)  # refitted on the object only
    same_up_to_sign(maps.components[mask], fg_proj, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(maps.explained_variance_ratio, fg_ratio, rtol=1e-4)
    assert fit_pca_maps(tokens).mask is None
    with pytest.raises(ValueError, match="threshold=50.0 leaves 0 foreground patches"):
        fit_pca_maps(tokens, foreground=True, threshold=50.0)


def test_to_rgb_scales_each_component_over_the_set_and_blacks_out_the_background():
    tokens, mask = object_tokens()
    maps = fit_pca_maps(tokens)
    rgb = to_rgb(maps, 8)  # one pixel per patch
    assert rgb.shape == (3, 8, 8, 3) and rgb.dtype == np.uint8
    assert (rgb.reshape(-1, 3).min(0) == 0).all() and (rgb.reshape(-1, 3).max(0) == 255).all()
    expected = maps.components - maps.components.min((0, 1, 2))
    expected = expected / expected.max((0, 1, 2)) * 255
    np.testing.assert_allclose(rgb, expected, atol=1)
    fg = fit_pca_maps(tokens, foreground=True)
    rgb = to_rgb(fg, 8)
    assert (rgb[~mask] == 0).all()
    assert (rgb[mask].min(0) == 0).all() and (rgb[mask].max(0) == 255).all()
    big = to_rgb(maps, 32)  # smooth upsampling stays in range
    assert big.shape == (3, 32, 32, 3) and len(np.unique(big[0, :, :, 0])) > 64
    with pytest.raises(ValueError, match="needs 3 components"):
        to_rgb(fit_pca_maps(tokens, n_components=2), 8)


def test_save_pairs_writes_image_beside_its_map(tmp_path):
    names, images = load_images(size=48)
    rgb = to_rgb(fit_pca_maps(np.random.default_rng(0).normal(size=(len(names), 3, 3, 8))), 48)
    names[0] = "a/b c"
    paths = save_pairs(names, images, rgb, tmp_path / "out")
    assert [p.name for p in paths][:2] == ["a_b_c.png", "chelsea.png"]
    for path, image, m in zip(paths, images, rgb, strict=True):
        pair = iio.imread(path)
        assert pair.shape == (48, 96, 3) and path.stat().st_size < 1_000_000
        np.testing.assert_array_equal(pair[:, :48], image.permute(1, 2, 0).numpy())
        np.testing.assert_array_equal(pair[:, 48:], m)
        assert (pair[:, 48:] != pair[:, :48]).mean() > 0.5
    with pytest.raises(ValueError, match="distinct file names"):
        save_pairs(["x", "x"], images[:2], rgb[:2], tmp_path)


def test_pca_maps_end_to_end_on_an_image_folder(tmp_path, encoder):
    rng = np.random.default_rng(0)
    for name in ("cls_a/x1.png", "cls_a/x2.jpg", "cls_b/y.png"):
        write(tmp_path / "imgs" / name, rng.integers(0, 256, (50, 70, 3), dtype=np.uint8))
    names, images = load_images(tmp_path / "imgs", size=2 * SIZE)  # drawn at twice the input
    drawn = pca_maps(encoder, images, names, tmp_path / "out", fit="per-image")
    paths = [Path(p) for p in drawn.numbers["files"]]
    assert [p.name for p in paths] == ["cls_a_x1.png", "cls_a_x2.png", "cls_b_y.png"]
    assert all(iio.imread(p).shape == (2 * SIZE, 4 * SIZE, 3) for p in paths)
    assert drawn.path == tmp_path / "out" and len(drawn.numbers["explained"]) == 3
    assert "3 image | PCA map pairs (per-image fit)" in drawn.summary
    with pytest.raises(ValueError, match="fit must be one of"):
        pca_maps(encoder, images, names, tmp_path / "bad", fit="both")
    with pytest.raises(ValueError, match="one name per image"):
        pca_maps(encoder, images, names[:2], tmp_path / "bad")
    cnn = Encoder.build("test_resnet", 3, 32, mean=(0.5,) * 3, std=(0.5,) * 3)
    with pytest.raises(ValueError, match="patch maps need a ViT backbone.*'test_resnet'"):
        pca_maps(cnn, images, names, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # refused before any work


# --- image input ----------------------------------------------------------------------------


def write(path, array, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    image = Image.fromarray(array) if mode is None else Image.fromarray(array).convert(mode)
    image.save(path)
    return path


def test_bundled_photos_are_the_seven_photos_resized():
    names, images = load_images(size=32)
    assert names == list(PHOTO_NAMES) and images.shape == (7, 3, 32, 32)
    # the astronaut is square: decoding it is one bilinear resize, done here with PIL
    whole = Image.fromarray(photo_original("astronaut")).resize((32, 32), Image.Resampling.BILINEAR)
    np.testing.assert_array_equal(images[0].permute(1, 2, 0).numpy(), np.asarray(whole))


def test_folders_are_searched_recursively_in_natural_order(tmp_path):
    colours = {
        "n02/c.PNG": (0, 0, 255),
        "n01/img10.jpeg": (0, 255, 0),
        "n01/img2.JPEG": (255, 0, 0),
        "n01/sub/d.bmp": (255, 255, 0),
    }
    for name, colour in colours.items():
        write(tmp_path / name, np.full((40, 60, 3), colour, dtype=np.uint8))
    write(tmp_path / ".hidden.png", np.zeros((8, 8, 3), np.uint8))
    (tmp_path / "notes.txt").write_text("not an image")
    names, images = load_images(tmp_path, size=16)
    assert names == ["n01_img2", "n01_img10", "n01_sub_d", "n02_c"]
    assert images.shape == (4, 3, 16, 16) and images.dtype == torch.uint8
    order = ["n01/img2.JPEG", "n01/img10.jpeg", "n01/sub/d.bmp", "n02/c.PNG"]
    expected = torch.tensor([colours[n] for n in order], dtype=torch.float32)
    torch.testing.assert_close(images.float().mean((2, 3)), expected, atol=3, rtol=0)  # JPEG
    files = [tmp_path / "n01/img2.JPEG", tmp_path / "n02/c.PNG"]
    write(tmp_path / "other/c.png", np.zeros((20, 20, 3), np.uint8))
    names, _ = load_images([*files, tmp_path / "other/c.png"], size=16)
    assert names == ["img2", "c", "c-2"]


def test_non_square_images_are_resized_and_centre_cropped(tmp_path):
    stripes = np.zeros((30, 90, 3), np.uint8)
    stripes[:, :30, 0] = stripes[:, 30:60, 1] = stripes[:, 60:, 2] = 255
    _, images = load_images(write(tmp_path / "s.png", stripes), size=30)
    assert (images[0, 1] == 255).all() and (images[0, 0] == 0).all()  # only the middle third


def test_colour_palettes_and_opaque_alpha_are_accepted(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (24, 24, 3), dtype=np.uint8)
    rgba = np.concatenate([pixels, np.full((24, 24, 1), 255, np.uint8)], axis=-1)
    palette = Image.fromarray(pixels).quantize(64)
    palette.save(tmp_path / "p.png")
    _, images = load_images([write(tmp_path / "a.png", rgba), tmp_path / "p.png"], size=24)
    np.testing.assert_array_equal(images[0].permute(1, 2, 0).numpy(), pixels)
    np.testing.assert_array_equal(images[1].permute(1, 2, 0).numpy(), palette.convert("RGB"))


@pytest.mark.parametrize(
    ("mode", "what"),
    [
        ("L", "greyscale image \\(PIL mode 'L'\\)"),
        ("1", "greyscale image \\(PIL mode '1'\\)"),
        ("LA", "greyscale image \\(PIL mode 'LA'\\)"),
        ("P", "greyscale image \\(PIL mode 'P'\\)"),
        ("RGBA", "image with transparent pixels \\(PIL mode 'RGBA'\\)"),
        ("I;16", "image with 16/32-bit samples \\(PIL mode 'I;16'\\)"),
    ],
)
def test_images_that_are_not_8_bit_colour_are_refused(tmp_path, mode, what):
    grey = np.tile(np.linspace(0, 255, 16, dtype=np.uint8), (16, 1))
    if mode == "RGBA":
        array = np.dstack([grey, grey, grey, grey])  # alpha from 0 to 255
        path = write(tmp_path / "x.png", array)
    elif mode == "I;16":
        path = write(tmp_path / "x.png", grey.astype(np.uint16) * 257)
    else:
        path = write(tmp_path / "x.png", grey, mode)
    assert Image.open(path).mode == mode
    with pytest.raises(ValueError, match=f"{path}: {what}") as err:
        load_images(path)
    assert ".save(...)" in str(err.value)  # says how to convert it


def test_bad_paths_and_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"image path {tmp_path / 'nope'} does not exist"):
        load_images(tmp_path / "nope")
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    with pytest.raises(ValueError, match=r"no images found in folder .*empty \(.*\.jpg.*\.png"):
        load_images(tmp_path / "empty")
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ValueError, match=f"cannot read image file {tmp_path / 'bad.jpg'}"):
        load_images(tmp_path / "bad.jpg")
    good = write(tmp_path / "good.jpg", np.full((64, 64, 3), 99, np.uint8))
    (tmp_path / "cut.jpg").write_bytes(good.read_bytes()[:300])
    with pytest.raises(ValueError, match=f"image file {tmp_path / 'cut.jpg'}"):
        load_images(tmp_path / "cut.jpg")


def test_montage_layout():
    images = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2)
    rgb = np.full((2, 2, 2, 3), 255, np.uint8)
    m = montage(images, rgb)
    assert m.shape == (4, 4, 3)
    np.testing.assert_array_equal(m[:2, 2:], images[1].transpose(1, 2, 0))
    assert (m[2:] == 255).all()
    with pytest.raises(ValueError, match="must match"):
        montage(images, rgb[:1])


def test_per_image_pca_fits_each_image_on_its_own_patches():
    rng = np.random.default_rng(3)
    tokens = rng.normal(size=(3, 4, 4, 8)) * np.array([1.0, 5.0, 0.2])[:, None, None, None]
    maps = fit_pca_maps(tokens, fit="per-image")
    assert maps.per_image and maps.explained_variance_ratio.shape == (3, 3)
    for i in range(3):
        proj, ratio = svd_pca(tokens[i].reshape(-1, 8), 3)  # numpy's SVD of this image alone
        same_up_to_sign(maps.components[i].reshape(-1, 3), proj, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(maps.explained_variance_ratio[i], ratio, rtol=1e-4)
        assert object_sign(maps.pc1[i : i + 1]) == 1.0  # each image oriented by the rule
    rgb = to_rgb(maps, 8)  # each image's colours span the whole range, whatever its scale
    assert [int(rgb[i].max()) for i in range(3)] == [255] * 3
    assert [int(rgb[i].min()) for i in range(3)] == [0] * 3
    joint = to_rgb(fit_pca_maps(tokens), 8)  # one scaling for all: the quiet image stays dim
    assert np.ptp(joint[2].astype(int)) < np.ptp(rgb[2].astype(int))
    with pytest.raises(ValueError, match="fit must be one of"):
        fit_pca_maps(tokens, fit="per-patch")
