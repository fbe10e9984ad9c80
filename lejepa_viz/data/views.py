"""Batched multi-view augmentation: a batch of images in, G global and L local views out.

Every view of the whole batch is made by tensor ops on the batch's device: one
``affine_grid`` + ``grid_sample`` call does each sample's random resized crop and flip (its own
``theta``), colour jitter is per-sample arithmetic, and Gaussian blur is two batched matrix
products over the samples drawn for it. This is the fast path on CPUs and GPUs alike; a per-image PIL
pipeline cannot keep up on two cores. All randomness comes from a ``torch.Generator`` (drawn on
its device, usually the CPU, then moved), so the same generator state gives the same views.

The colour recipe is the one of DINO / LeJEPA (RGB): colour jitter with probability 0.8
(brightness 0.4, contrast 0.4, saturation 0.2, applied in this fixed order; the hue jitter of
the original is left out), greyscale 0.2, Gaussian blur (1.0 on the first global view, 0.1 on
the others, 0.5 on local views), solarize 0.2 on global views after the first. The greyscale
variant (``color=False``) keeps crops, flips, brightness/contrast jitter (0.8) and a small blur
(0.5), and never solarizes. ``photometric=False`` keeps crops and flips only.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace

import torch
import torch.nn.functional as F
from torch import nn

from .._checks import integer_at_least

_TRIES = 10  # crop candidates per sample, as torchvision's RandomResizedCrop
# Columns of the (B, 31) uniforms drawn for each view: the crop, then the colour choices
_CROP = slice(0, 2 * _TRIES + 3)  # 10 areas, 10 ratios, x, y, flip
_JITTER, _BRIGHT, _CONTRAST, _SATURATION, _GREY, _BLUR, _SIGMA, _SOLARIZE = range(23, 31)
_DRAWS = 31
GREY_SCALES = {"global_scale": (0.6, 1.0), "local_scale": (0.15, 0.4)}  # small greyscale images


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [0, 1]; float images (taken to be in [0, 1]) -> float32.

    Example:
        >>> to_float(torch.tensor([0, 51, 255], dtype=torch.uint8))
        tensor([0.0000, 0.2000, 1.0000])
    """
    if not isinstance(images, torch.Tensor):
        raise ValueError(f"images must be a torch.Tensor, got {type(images).__name__}")
    if images.dtype == torch.uint8:
        return images.float().div_(255)
    if images.is_floating_point():
        return images.float()
    raise ValueError(f"images must be uint8 or floating point, got {images.dtype}")


@dataclass
class ViewConfig:
    """How :class:`MultiViewAugment` makes views.

    Attributes:
        num_global: number G of global views.
        num_local: number L of local views (0 allowed).
        global_size: side ``gs`` of the global views.
        local_size: side ``ls`` of the local views.
        global_scale: range of the crop area of global views, as a fraction of the image.
        local_scale: the same for local views.
        ratio: range of the crop aspect ratio (width / height), sampled log-uniformly.
        flip: probability of a horizontal flip.
        clean_views: how many leading global views are the whole image, flipped at random and
            otherwise untouched: then the images a model is used on (whole, clean) are among
            those SIGReg shapes, not an extreme slice of the augmented ones.
        color: the RGB colour recipe (True) or the greyscale variant (False), see the module
            docstring; saturation and greyscale need 3 channels and are skipped for 1.
        photometric: False turns off every colour change and blur: crops and flips only.
        blur_sigma: range of the blur's standard deviation, in pixels of a view; None means
            ``(0.1, 2.0)`` scaled by ``global_size / 224`` when ``color``, else ``(0.1, 1.0)``.
    """

    num_global: int = 2
    num_local: int = 4
    global_size: int = 224
    local_size: int = 96
    global_scale: tuple[float, float] = (0.3, 1.0)
    local_scale: tuple[float, float] = (0.05, 0.3)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    flip: float = 0.5
    clean_views: int = 0
    color: bool = True
    photometric: bool = True
    blur_sigma: tuple[float, float] | None = None

    def __post_init__(self) -> None:
        integer_at_least(self.num_global, 1, "num_global")
        integer_at_least(self.num_local, 0, "num_local")
        integer_at_least(self.global_size, 1, "global_size")
        integer_at_least(self.local_size, 1, "local_size")
        ranges = {"global_scale": 1, "local_scale": 1, "ratio": math.inf, "blur_sigma": math.inf}
        for name, top in ranges.items():
            value = getattr(self, name)
            if name == "blur_sigma" and value is None:  # the default, see sigma_range
                continue
            if value is None or len(value) != 2 or not 0 < value[0] <= value[1] <= top:
                raise ValueError(
                    f"{name} must be (low, high) with 0 < low <= high <= {top}, got {value}"
                )
            setattr(self, name, (float(value[0]), float(value[1])))
        if not 0 <= self.flip <= 1:
            raise ValueError(f"flip must be a probability in [0, 1], got {self.flip}")
        if not 0 <= self.clean_views <= self.num_global:
            raise ValueError(
                f"clean_views must be in [0, num_global={self.num_global}], got {self.clean_views}"
            )

    @property
    def sigma_range(self) -> tuple[float, float]:
        """``blur_sigma``, or its default when None."""
        if self.blur_sigma is not None:
            return self.blur_sigma
        if not self.color:
            return (0.1, 1.0)
        return (0.1 * self.global_size / 224, 2.0 * self.global_size / 224)


class MultiViewAugment(nn.Module):
    """Random resized crops, flips and colour changes of a batch: ``(B, C, H, W)`` ->
    ``(G, B, C, gs, gs)`` global and ``(L, B, C, ls, ls)`` local views, float32 in [0, 1] (not
    normalised: the encoder does that).

    Args:
        config: a :class:`ViewConfig` (default: ``ViewConfig()``, the 224-pixel RGB recipe).
        **options: fields of :class:`ViewConfig` that override those of ``config``.

    Example:
        >>> augment = MultiViewAugment(global_size=28, local_size=14, color=False)
        >>> images = torch.randint(0, 256, (8, 1, 28, 28), dtype=torch.uint8)
        >>> g, l = augment(images, generator=torch.Generator().manual_seed(0))
        >>> tuple(g.shape), tuple(l.shape)
        ((2, 8, 1, 28, 28), (4, 8, 1, 14, 14))
    """

    def __init__(self, config: ViewConfig | None = None, **options) -> None:
        super().__init__()
        self.config = replace(config or ViewConfig(), **options)

    @classmethod
    def for_dataset(
        cls, dataset, num_global: int = 2, num_local: int = 4, **options
    ) -> MultiViewAugment:
        """The recipe for a dataset (anything with ``num_channels`` and ``image_size``) or a
        ``(channels, size)`` pair: global views at the image size; local views at half of it
        for greyscale (28 -> 14, 16 -> 8), ~0.44 of it rounded to a multiple of 8 for RGB
        (224 -> 96, 64 -> 32); the colour recipe for 3 channels. Small greyscale images get
        milder crops (global 0.6–1, local 0.15–0.4 of the area; Fashion-MNIST, 3-minute runs:
        linear +0.8, k-NN +0.6 points over the photo recipe's 0.3–1 and 0.05–0.3). ``options``
        (None values ignored) override any field of :class:`ViewConfig`.

        Example:
            >>> MultiViewAugment.for_dataset((3, 224)).config.local_size
            96
            >>> MultiViewAugment.for_dataset((1, 28)).config.global_scale
            (0.6, 1.0)
        """
        if hasattr(dataset, "num_channels"):
            channels, size = dataset.num_channels, dataset.image_size
        else:
            channels, size = dataset
        grey = channels == 1
        local = max(4, size // 2) if grey else max(8, 8 * round(0.44 * size / 8))
        scales = GREY_SCALES if grey else {}
        config = ViewConfig(num_global, num_local, size, local, color=channels == 3, **scales)
        return cls(config, **{k: v for k, v in options.items() if v is not None})

    def extra_repr(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in asdict(self.config).items())

    def forward(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Make the views of ``images`` (uint8, or float in [0, 1]), shape ``(B, C, H, W)``.

        Returns:
            ``(global_views, local_views)`` of shapes ``(G, B, C, gs, gs)`` and
            ``(L, B, C, ls, ls)``, float32 in [0, 1] on the device of ``images``.
        """
        if not isinstance(images, torch.Tensor) or images.ndim != 4:
            got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
            raise ValueError(f"images must have shape (B, C, H, W), got {got}")
        cfg, x = self.config, to_float(images)
        B, C = x.shape[:2]
        # (blur, solarize) probabilities: first global view, other global views, local views
        first, other, local = [(0.5, 0.0)] * 3
        if cfg.color:
            first, other, local = (1.0, 0.0), (0.1, 0.2), (0.5, 0.0)
        g = [
            self._view(
                x,
                cfg.global_size,
                cfg.global_scale,
                *(other if i else first),
                generator,
                clean=i < cfg.clean_views,
            )
            for i in range(cfg.num_global)
        ]
        loc = [
            self._view(x, cfg.local_size, cfg.local_scale, *local, generator)
            for _ in range(cfg.num_local)
        ]
        ls = cfg.local_size
        return torch.stack(g), torch.stack(loc) if loc else x.new_empty(0, B, C, ls, ls)

    def _view(
        self,
        x: torch.Tensor,
        size: int,
        scale: tuple[float, float],
        blur_p: float,
        solarize_p: float,
        generator: torch.Generator | None,
        clean: bool = False,
    ) -> torch.Tensor:
        """One view of every sample of ``x`` (B, C, H, W) -> (B, C, size, size); a ``clean``
        one is the whole image, only flipped (the same random draws are made)."""
        cfg, (B, C, H, W) = self.config, x.shape
        # all of this view's randomness, drawn where the generator lives (the CPU by default)
        device = "cpu" if generator is None else generator.device
        u_host = torch.rand(B, _DRAWS, generator=generator, device=device)
        u = u_host.to(x.device, non_blocking=True)
        scale, ratio = ((1.0, 1.0), (W / H, W / H)) if clean else (scale, cfg.ratio)
        theta = crop_theta(u[:, _CROP], H, W, scale, ratio, cfg.flip).to(x.dtype)  # (B, 2, 3)
        grid = F.affine_grid(theta, [B, C, size, size], align_corners=False)
        v = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
        if clean or not cfg.photometric:
            return v
        u = u.view(B, _DRAWS, 1, 1, 1)
        jitter = u[:, _JITTER] < 0.8
        v = (v * torch.where(jitter, 0.6 + 0.8 * u[:, _BRIGHT], 1.0)).clamp_(0, 1)  # brightness 0.4
        mean = _grey(v).mean((1, 2, 3), keepdim=True)
        v = torch.lerp(mean, v, torch.where(jitter, 0.6 + 0.8 * u[:, _CONTRAST], 1.0)).clamp_(0, 1)
        if cfg.color and C == 3:
            saturation = torch.where(jitter, 0.8 + 0.4 * u[:, _SATURATION], 1.0)  # saturation 0.2
            v = torch.lerp(_grey(v), v, saturation).clamp_(0, 1)
            v = torch.where(u[:, _GREY] < 0.2, _grey(v).expand_as(v), v)
        blurred = (u_host[:, _BLUR] < blur_p).nonzero()[:, 0]  # chosen on the host: no GPU sync
        if len(blurred):
            lo, hi = cfg.sigma_range
            sigma = (lo + (hi - lo) * u_host[blurred, _SIGMA]).to(x.device)
            index = blurred.to(x.device)
            v[index] = gaussian_blur(v[index], sigma, radius=math.ceil(3 * hi))
        if solarize_p > 0:
            v = torch.where((u[:, _SOLARIZE] < solarize_p) & (v >= 0.5), 1 - v, v)
        return v


def crop_theta(
    u: torch.Tensor,
    H: int,
    W: int,
    scale: tuple[float, float],
    ratio: tuple[float, float],
    flip: float,
) -> torch.Tensor:
    """Affine matrices ``(B, 2, 3)`` of random resized crops (and flips) for ``F.affine_grid``.

    As torchvision's ``RandomResizedCrop``: the area fraction is uniform in ``scale``, the aspect
    ratio log-uniform in ``ratio``; the first of 10 candidates that fits the ``H x W`` image is
    used, the whole image when none does; the position is uniform. Crops are not rounded to
    whole pixels.

    Args:
        u: uniforms in [0, 1), shape ``(B, 23)``: 10 areas, 10 ratios, x, y, flip.

    Example:
        >>> crop_theta(torch.full((1, 23), 0.5), 8, 8, (1.0, 1.0), (1.0, 1.0), 0.0)
        tensor([[[1., 0., 0.],
                 [0., 1., 0.]]])
    """
    area = scale[0] + (scale[1] - scale[0]) * u[:, :_TRIES]  # (B, 10) fraction of H * W
    log_lo, log_hi = math.log(ratio[0]), math.log(ratio[1])
    r = torch.exp(log_lo + (log_hi - log_lo) * u[:, _TRIES : 2 * _TRIES])  # width / height
    w = torch.sqrt(area * r * H / W)  # crop width as a fraction of W
    h = torch.sqrt(area / r * W / H)
    fits = (w <= 1) & (h <= 1)
    first = fits.to(torch.uint8).argmax(1, keepdim=True)  # first candidate that fits
    any_fits = fits.any(1)
    w = torch.where(any_fits, w.gather(1, first)[:, 0], 1.0)  # (B,)
    h = torch.where(any_fits, h.gather(1, first)[:, 0], 1.0)
    tx = (1 - w) * (2 * u[:, 2 * _TRIES] - 1)  # crop centre in [-1, 1] coordinates
    ty = (1 - h) * (2 * u[:, 2 * _TRIES + 1] - 1)
    sx = torch.where(u[:, 2 * _TRIES + 2] < flip, -w, w)  # a negative scale mirrors
    zero = torch.zeros_like(w)
    return torch.stack([torch.stack([sx, zero, tx], 1), torch.stack([zero, h, ty], 1)], 1)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """Blur each image of ``x`` (n, C, H, W) with its own ``sigma`` (n,), reflecting at borders.

    The same as a ``2 radius + 1``-tap Gaussian convolution with reflect padding (torchvision's
    ``gaussian_blur``), written as two batched matrix products with banded matrices, one per
    image: faster than a grouped convolution for small images, and plain on any device.

    Example:
        >>> flat = torch.ones(2, 1, 5, 5)
        >>> torch.allclose(gaussian_blur(flat, torch.tensor([0.5, 2.0]), radius=2), flat)
        True
    """
    H, W = x.shape[-2:]
    sigma = sigma.to(x.device, x.dtype)
    rows = _blur_matrix(H, sigma, radius)  # (n, H, H)
    cols = rows if W == H else _blur_matrix(W, sigma, radius)
    return rows[:, None] @ x @ cols[:, None].transpose(-1, -2)


def _blur_matrix(size: int, sigma: torch.Tensor, radius: int) -> torch.Tensor:
    """``(n, size, size)`` matrices: row i holds the Gaussian taps around i, reflected inside."""
    r = max(0, min(radius, size - 1))
    offsets = torch.arange(-r, r + 1, device=sigma.device)
    taps = torch.exp(-0.5 * (offsets / sigma[:, None]).square())
    taps = taps / taps.sum(1, keepdim=True)  # (n, 2r+1)
    index = (torch.arange(size, device=sigma.device)[:, None] + offsets).abs()  # -i -> i
    index = torch.where(index > size - 1, 2 * (size - 1) - index, index)  # size-1+i -> size-1-i
    n = len(sigma)
    matrix = sigma.new_zeros(n, size, size)
    return matrix.scatter_add_(2, index.expand(n, -1, -1), taps[:, None].expand(-1, size, -1))


def _grey(x: torch.Tensor) -> torch.Tensor:
    """ITU-R 601 luma (as torchvision), (B, C, H, W) -> (B, 1, H, W); the image itself for C = 1."""
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    return (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)
