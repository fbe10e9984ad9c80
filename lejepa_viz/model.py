"""The LeJEPA encoder: a backbone it is given plus an MLP projector; the readouts of its ViT.

Images enter as floats in [0, 1] of shape (B, C, H, W) at the encoder's resolution; the
encoder normalises them itself with the dataset's mean and std (buffers saved with the
weights). ``forward`` returns the backbone embedding (what the online probe reads) and the
projector output ``z`` (what the loss sees). :class:`Encoder` wraps any built backbone
(:meth:`Encoder.build` builds a timm one from a name; :mod:`lejepa_viz.backbones` loads one
from weights); what is not the module's own job is a function here: BatchNorm statistics
(:func:`batch_statistics`, :func:`precise_bn`) and a ViT's last-layer patch tokens and [CLS]
attention (:func:`patch_tokens`, :func:`cls_attention`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

import timm
import torch
import torch.nn.functional as F
from timm.models import register_model
from timm.models.vision_transformer import VisionTransformer
from torch import nn

from .distributed import seeded

# CPU-fast defaults per dataset: a small timm CNN for small greyscale images (faster than a
# tiny ViT at 28x28), a small ViT for photos (patch features for the PCA maps).
DEFAULT_BACKBONES = {"fashion-mnist": "test_byobnet", "digits": "test_byobnet"}
DEFAULT_RGB_BACKBONE = "vit_tiny_patch16_224"
CNN_FEATURE_LEVELS = 4  # the feature maps of this many last levels make a CNN's probe features
CNN_FEATURE_GRID = 4  # each pooled to at most this many cells a side (28 x 28: 4, 4, 2, 1)
VIT_HINT = "a timm VisionTransformer such as vit_small_patch16_224 or vit_small_patch14_dinov2"


def default_backbone(dataset: str) -> str:
    """The default timm backbone for a dataset name (``folder:`` and ``photos`` get a small ViT)."""
    return DEFAULT_BACKBONES.get(dataset, DEFAULT_RGB_BACKBONE)


def create_backbone(
    name: str, in_chans: int, image_size: int, pretrained: bool = False, **extra
) -> nn.Module:
    """A timm model without classifier (``num_classes=0``) for ``in_chans`` x ``image_size``²;
    ``extra``: timm arguments beyond the name's defaults (e.g. ``embed_dim``, ``depth``)."""
    kwargs = {"num_classes": 0, "in_chans": in_chans, "pretrained": pretrained, **extra}
    # ViTs are built for the image size and resample their position embeddings for other sizes
    # (local views, PCA maps at a higher resolution); CNNs refuse both arguments.
    sizes = ({"img_size": image_size, "dynamic_img_size": True}, {"img_size": image_size}, {})
    for size in sizes:
        try:
            return timm.create_model(name, **size, **kwargs)
        except TypeError:
            continue
        except RuntimeError as err:  # timm: "Unknown model (...)"
            raise ValueError(f"backbone {name!r} is not a timm model: {err}") from None
    raise ValueError(f"timm could not build {name!r} with {kwargs}")


@register_model
def vit_pico_patch8(pretrained: bool = False, **kwargs) -> VisionTransformer:
    """ViT-Tiny's width (192, 3 heads) with 4 blocks and 8 x 8 patches, 64 x 64 by default:
    1.8M parameters whose patch features train in minutes on a CPU (the gallery's ViT)."""
    if pretrained:
        raise ValueError("vit_pico_patch8 has no pretrained weights; train it with lejepa-viz")
    for key in ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir"):  # timm's, not ours
        kwargs.pop(key, None)
    args = dict(img_size=64, patch_size=8, embed_dim=192, depth=4, num_heads=3)
    return VisionTransformer(**{**args, **kwargs})


class Projector(nn.Sequential):
    """MLP ``F -> hidden -> hidden -> out`` with BatchNorm and GELU (the LeJEPA projector)."""

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128):
        super().__init__(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, out_dim),
        )


class Encoder(nn.Module):
    """A backbone it is given, its input normalisation, and a projector.

    Args:
        backbone: a built model mapping normalised images ``(B, C, H, W)`` to embeddings
            ``(B, F)`` with ``num_features = F`` (any timm model with ``num_classes=0``).
        name: its timm architecture name (with ``backbone_kwargs``, what rebuilds it).
        image_size: the input resolution it is used at.
        mean, std: per-channel normalisation of images in [0, 1]; their length is the number
            of channels C.
        backbone_kwargs: timm arguments beyond the name's defaults (an architecture read from
            weights, :func:`lejepa_viz.backbones.load_backbone`).
        proj_hidden: projector width.
        proj_dim: projector output dimension D of ``z``.

    Example:
        >>> enc = Encoder.build("test_resnet", in_chans=1, image_size=28, mean=(0.29,),
        ...                     std=(0.35,))
        >>> emb, z = enc(torch.rand(4, 1, 28, 28))
        >>> emb.shape, z.shape, Encoder.build(**enc.config).config == enc.config
        (torch.Size([4, 96]), torch.Size([4, 128]), True)
    """

    def __init__(
        self,
        backbone: nn.Module,
        *,
        name: str,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        backbone_kwargs: dict | None = None,
        proj_hidden: int = 512,
        proj_dim: int = 128,
    ):
        super().__init__()
        if len(mean) != len(std) or not len(mean):
            raise ValueError(f"mean and std need one value per channel, got {mean} and {std}")
        self.name, self.image_size = name, int(image_size)
        self.channel_mean, self.channel_std = tuple(mean), tuple(std)
        self.backbone_kwargs = dict(backbone_kwargs or {})
        self.backbone = backbone
        self.projector = Projector(backbone.num_features, proj_hidden, proj_dim)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))

    @classmethod
    def build(
        cls,
        backbone: str,
        in_chans: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        proj_hidden: int = 512,
        proj_dim: int = 128,
        backbone_kwargs: dict | None = None,
        pretrained: bool = False,
    ) -> Encoder:
        """An encoder around a new timm backbone ``backbone`` (a name) for ``in_chans`` x
        ``image_size``² images; ``Encoder.build(**encoder.config)`` rebuilds an encoder's
        architecture. ``pretrained`` loads timm's weights (needs a network)."""
        if len(mean) != in_chans or len(std) != in_chans:
            raise ValueError(f"mean and std need {in_chans} values, got {mean} and {std}")
        kwargs = dict(backbone_kwargs or {})
        extra = {k: v for k, v in kwargs.items() if k not in ("in_chans", "img_size")}
        module = create_backbone(backbone, in_chans, image_size, pretrained, **extra)
        return cls(
            module,
            name=backbone,
            image_size=image_size,
            mean=mean,
            std=std,
            backbone_kwargs=kwargs,
            proj_hidden=proj_hidden,
            proj_dim=proj_dim,
        )

    @property
    def config(self) -> dict:
        """What :meth:`build` takes to rebuild this architecture (saved in checkpoints)."""
        first, last = self.projector[0], self.projector[-1]
        config = dict(
            backbone=self.name,
            in_chans=len(self.channel_mean),
            image_size=self.image_size,
            mean=self.channel_mean,
            std=self.channel_std,
            proj_hidden=first.out_features,
            proj_dim=last.out_features,
        )
        if self.backbone_kwargs:
            config["backbone_kwargs"] = dict(self.backbone_kwargs)
        return config

    @property
    def is_vit(self) -> bool:
        return isinstance(self.backbone, VisionTransformer)

    @property
    def has_cls(self) -> bool:
        """A ViT with a [CLS] token (the attention maps read its row)."""
        return self.is_vit and getattr(self.backbone, "cls_token", None) is not None

    @property
    def embed_dim(self) -> int:
        """Width of the backbone embedding that ``forward`` returns."""
        return self.backbone.num_features

    def set_input_size(self, image_size: int) -> Encoder:
        """Use the ViT at ``image_size`` pixels: its position embeddings are resampled
        (bicubic), the way DINOv2 maps are drawn above the training resolution."""
        if not self.is_vit:
            raise ValueError(f"only a ViT changes its input size; {self.name!r} is not one")
        if image_size != self.image_size:
            self.backbone.set_input_size(img_size=image_size)
            self.image_size = int(image_size)
        return self

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        return (images - self.mean) / self.std

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``images`` (B, C, H, W) in [0, 1] -> ``(embedding (B, F), z (B, proj_dim))``."""
        emb = self.backbone(self.normalize(images))
        return emb, self.projector(emb)

    def forward_views(
        self, global_views: torch.Tensor, local_views: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The multi-view forward of training: ``(G, B, C, H, W)`` global and ``(L, B, C, h, w)``
        local views (L may be 0) -> ``z`` ``(G + L, B, proj_dim)`` and the backbone embeddings
        ``(G + L, B, F)``, global views first. Global and local views pass the backbone
        separately (their sizes differ) and the projector together: one BatchNorm over all
        views."""
        B = global_views.shape[1]
        emb = [self.backbone(self.normalize(global_views.flatten(0, 1)))]  # (G·B, F)
        if local_views.shape[0]:
            emb.append(self.backbone(self.normalize(local_views.flatten(0, 1))))  # (L·B, F)
        h = torch.cat(emb)  # (V·B, F)
        z = self.projector(h)  # (V·B, D)
        return z.view(-1, B, z.shape[-1]), h.view(-1, B, h.shape[-1])


def random_twin(encoder: Encoder, seed: int = 0) -> Encoder:
    """The same architecture as ``encoder`` at a seeded random initialisation, in eval mode, on
    the CPU (the global random state is left as it was)."""
    with seeded(seed):
        return Encoder.build(**encoder.config).eval()


# ----------------------------------------------------------------------------- BatchNorm


def batchnorms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextmanager
def batch_statistics(module: nn.Module) -> Iterator[nn.Module]:
    """Inside the block ``module`` is in train mode, so BatchNorm normalises a batch with its
    own statistics, and no running statistic changes (not even the batch counter); mode and
    BatchNorm settings are restored after. (No gradients are taken here: wrap the call in
    ``no_grad``.)"""
    was_training, norms = module.training, batchnorms(module)
    for m in norms:
        m.track_running_stats = False  # train mode: batch statistics, nothing updated
    module.train()
    try:
        yield module
    finally:
        for m in norms:
            m.track_running_stats = True
        module.train(was_training)


@torch.no_grad()
def precise_bn(encoder: Encoder, images: torch.Tensor, batch_size: int = 512) -> None:
    """Re-estimate every BatchNorm's running statistics as the plain average over the batches
    of ``images`` (uint8 or floats in [0, 1], ``(N, C, H, W)``): "precise BN".

    Training views reach the backbone in separate calls (global, then local) whose statistics
    differ, and the running averages mix them, so in eval mode clean images would be
    normalised with statistics they do not have. Only buffers change, which training never
    reads (train mode uses batch statistics).
    """
    norms = batchnorms(encoder)
    momenta = [m.momentum for m in norms]
    was_training = encoder.training
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    encoder.train()
    try:
        for chunk in images.split(batch_size):
            chunk = chunk.to(encoder.mean.device)
            encoder(chunk.float() / 255 if chunk.dtype == torch.uint8 else chunk.float())
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        encoder.train(was_training)


# ----------------------------------------------------------------------------- readouts


@torch.no_grad()
def probe_features(encoder: Encoder, images: torch.Tensor) -> torch.Tensor:
    """What the probes read of float images ``(B, C, H, W)`` in [0, 1]: ``(B, F')``.

    ViTs: the [CLS] tokens of the last two blocks (after the final norm), concatenated.
    CNNs: the maps of the last four feature levels, each average-pooled to at most a 4 x 4
    grid and flattened, concatenated (backbones without ``forward_intermediates``: the pooled
    embedding). Keeping the coarse layout matters on small images: the README's table
    measures it on Fashion-MNIST, for the trained CNN and for random initialisation alike.

    Example:
        >>> enc = Encoder.build("test_resnet", 1, 28, mean=(0.29,), std=(0.35,))
        >>> probe_features(enc, torch.rand(4, 1, 28, 28)).shape
        torch.Size([4, 2144])
    """
    x = encoder.normalize(images)
    backbone = encoder.backbone
    if not encoder.is_vit:
        if not hasattr(backbone, "forward_intermediates"):
            return backbone(x)
        levels = min(CNN_FEATURE_LEVELS, len(backbone.feature_info))
        maps = backbone.forward_intermediates(x, indices=levels, intermediates_only=True)
        grids = [
            F.adaptive_avg_pool2d(m, [min(CNN_FEATURE_GRID, s) for s in m.shape[-2:]]) for m in maps
        ]
        return torch.cat([g.flatten(1) for g in grids], dim=-1)  # (B, Σ C·h·w)
    blocks = backbone.forward_intermediates(
        x,
        indices=2,
        return_prefix_tokens=True,
        norm=True,
        output_fmt="NLC",
        intermediates_only=True,
    )
    return torch.cat([prefix[:, 0] for _, prefix in blocks], dim=-1)


def require_vit(encoder: Encoder, what: str, cls: bool = False) -> VisionTransformer:
    """``encoder``'s ViT backbone, or a ``ValueError``: ``what`` need a ViT (with a [CLS]
    token when ``cls``), and this encoder's backbone is not one."""
    if not (encoder.has_cls if cls else encoder.is_vit):
        need = "a ViT with a [CLS] token" if cls else f"a ViT backbone ({VIT_HINT})"
        raise ValueError(f"{what} need {need}; {encoder.name!r} is not one")
    return encoder.backbone


@torch.no_grad()
def patch_tokens(encoder: Encoder, images: torch.Tensor) -> torch.Tensor:
    """Last-layer normalised patch tokens ``(B, P, F)`` of a ViT encoder for float images
    ``(B, C, H, W)`` in [0, 1], P = (H/p)·(W/p)."""
    vit = require_vit(encoder, "patch tokens")
    tokens = vit.forward_features(encoder.normalize(images))  # (B, prefix + P, F)
    return tokens[:, vit.num_prefix_tokens :]


@torch.no_grad()
def cls_attention(encoder: Encoder, images: torch.Tensor) -> torch.Tensor:
    """The last block's attention of the [CLS] token over the patches, per head:
    ``(B, heads, P)`` for float images ``(B, C, H, W)`` in [0, 1], each row summing to at most
    1 (the rest goes to [CLS] itself and any register tokens), as the paper's Fig. 13 and
    DINO read it.

    The block's own attention probabilities, read where timm's ``Attention`` applies its
    dropout to them (timm's ``AttentionExtract`` reads them there too); the fused kernel,
    which never forms them, is switched off for this one pass.
    """
    vit = require_vit(encoder, "attention maps", cls=True)
    attn = vit.blocks[-1].attn
    if not hasattr(attn, "attn_drop") or not hasattr(attn, "fused_attn"):
        raise ValueError(f"the last block's {type(attn).__name__} keeps no attention to read")
    seen, fused = [], attn.fused_attn
    hook = attn.attn_drop.register_forward_hook(lambda module, args, out: seen.append(out))
    attn.fused_attn = False
    try:
        vit.forward_features(encoder.normalize(images))
    finally:
        attn.fused_attn = fused
        hook.remove()
    return seen[0][:, :, 0, vit.num_prefix_tokens :]  # (B, heads, N, N) -> (B, heads, P)
