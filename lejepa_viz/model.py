"""The LeJEPA encoder: any timm backbone plus an MLP projector, with probe features and patch tokens.

Images enter as floats in [0, 1] of shape (B, C, H, W) at the training resolution; the encoder
normalises them itself with the dataset's mean and std (buffers saved with the weights), so
``load_encoder(path).features(images)`` needs nothing else. ``forward`` returns the backbone
embedding (what the online probe reads) and the projector output ``z`` (what the loss sees).
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

from .runs import load_checkpoint

# CPU-fast defaults per dataset: a small timm CNN for small greyscale images (3-4x faster
# than a tiny ViT at 28x28), a small ViT for photos (patch features for the PCA maps).
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
    """Backbone + projector.

    Args:
        backbone: a timm model name.
        in_chans: image channels.
        image_size: training resolution (ViTs are built for it).
        mean: per-channel mean of the images in [0, 1].
        std: per-channel standard deviation.
        proj_hidden: projector width.
        proj_dim: projector output dimension D of ``z``.
        pretrained: load timm's pretrained weights (needs a network).
        backbone_kwargs: timm arguments beyond the name's defaults (an architecture read from
            weights, :func:`lejepa_viz.backbones.load_backbone`).

    Example:
        >>> enc = Encoder("test_resnet", in_chans=1, image_size=28, mean=(0.29,), std=(0.35,))
        >>> emb, z = enc(torch.rand(4, 1, 28, 28))
        >>> emb.shape, z.shape, enc.features(torch.rand(4, 1, 28, 28)).shape
        (torch.Size([4, 96]), torch.Size([4, 128]), torch.Size([4, 2144]))
    """

    def __init__(
        self,
        backbone: str,
        in_chans: int,
        image_size: int,
        mean: Sequence[float],
        std: Sequence[float],
        proj_hidden: int = 512,
        proj_dim: int = 128,
        pretrained: bool = False,
        backbone_kwargs: dict | None = None,
    ):
        super().__init__()
        if len(mean) != in_chans or len(std) != in_chans:
            raise ValueError(f"mean and std need {in_chans} values, got {mean} and {std}")
        self.config = dict(
            backbone=backbone,
            in_chans=in_chans,
            image_size=image_size,
            mean=tuple(mean),
            std=tuple(std),
            proj_hidden=proj_hidden,
            proj_dim=proj_dim,
        )
        if backbone_kwargs:
            self.config["backbone_kwargs"] = dict(backbone_kwargs)
        extra = {
            k: v for k, v in (backbone_kwargs or {}).items() if k not in ("in_chans", "img_size")
        }
        self.backbone = create_backbone(backbone, in_chans, image_size, pretrained, **extra)
        self.projector = Projector(self.backbone.num_features, proj_hidden, proj_dim)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(-1, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(-1, 1, 1))

    @property
    def is_vit(self) -> bool:
        return isinstance(self.backbone, VisionTransformer)

    @property
    def embed_dim(self) -> int:
        """Width of the backbone embedding that ``forward`` returns."""
        return self.backbone.num_features

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
        local views (L may be 0) -> ``z`` ``(G + L, B, proj_dim)`` and the backbone embeddings of
        the global views ``(G·B, F)``. Global and local views pass the backbone separately
        (their sizes differ) and the projector together: one BatchNorm over all views."""
        B = global_views.shape[1]
        emb = [self.backbone(self.normalize(global_views.flatten(0, 1)))]  # (G·B, F)
        if local_views.shape[0]:
            emb.append(self.backbone(self.normalize(local_views.flatten(0, 1))))  # (L·B, F)
        z = self.projector(torch.cat(emb))  # (V·B, D)
        return z.view(-1, B, z.shape[-1]), emb[0]

    def batchnorms(self) -> list[nn.modules.batchnorm._BatchNorm]:
        return [m for m in self.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]

    @contextmanager
    def batch_statistics(self) -> Iterator[Encoder]:
        """Inside the block the encoder is in train mode, so BatchNorm normalises a batch with
        its own statistics, and no running statistic changes (not even the batch counter);
        mode and BatchNorm settings are restored after. (No gradients are taken here: wrap
        the call in ``no_grad``.)"""
        was_training, norms = self.training, self.batchnorms()
        for m in norms:
            m.track_running_stats = False  # train mode: batch statistics, nothing updated
        self.train()
        try:
            yield self
        finally:
            for m in norms:
                m.track_running_stats = True
            self.train(was_training)

    @torch.no_grad()
    def precise_bn(self, images: torch.Tensor, batch_size: int = 512) -> None:
        """Re-estimate every BatchNorm's running statistics as the plain average over the
        batches of ``images`` (uint8 or floats in [0, 1], ``(N, C, H, W)``): "precise BN".

        Training views reach the backbone in separate calls (global, then local) whose
        statistics differ, and the running averages mix them, so in eval mode clean images
        are normalised with statistics they do not have (a 3-minute Fashion-MNIST CNN: SIGReg
        of 512 clean test images 31.9; after this, 10.6, the probes unchanged). Only buffers
        change, which training never reads (train mode uses batch statistics).
        """
        norms = self.batchnorms()
        momenta = [m.momentum for m in norms]
        was_training = self.training
        for m in norms:
            m.reset_running_stats()
            m.momentum = None  # a cumulative average over the batches
        self.train()
        try:
            for chunk in images.split(batch_size):
                chunk = chunk.to(self.mean.device)
                self(chunk.float() / 255 if chunk.dtype == torch.uint8 else chunk.float())
        finally:
            for m, momentum in zip(norms, momenta, strict=True):
                m.momentum = momentum
            self.train(was_training)

    @torch.no_grad()
    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Probe features (B, F') of float images (B, C, H, W) in [0, 1].

        ViTs: the CLS tokens of the last two blocks (after the final norm), concatenated.
        CNNs: the maps of the last four feature levels, each average-pooled to at most a
        4 x 4 grid and flattened, concatenated (backbones without ``forward_intermediates``:
        the pooled embedding). Keeping the coarse layout matters on small images: on
        Fashion-MNIST (test_byobnet, 28 x 28; 20k / 5k-image subsets) the last three levels'
        grids (4 x 4, 2 x 2, 1 x 1: 1,792 numbers) score 86.96% linear and 84.62% k-NN after 3
        minutes where the globally pooled maps score 85.90% and 80.82%; after 10 minutes the
        fourth level (stage 0 at 4 x 4, 2,304 numbers in all) adds 0.66 points of linear
        probe (88.12 → 88.78%), k-NN level (86.12 → 86.18%).
        """
        x = self.normalize(images)
        if not self.is_vit:
            if not hasattr(self.backbone, "forward_intermediates"):
                return self.backbone(x)
            levels = min(CNN_FEATURE_LEVELS, len(self.backbone.feature_info))
            maps = self.backbone.forward_intermediates(x, indices=levels, intermediates_only=True)
            grids = [
                F.adaptive_avg_pool2d(m, [min(CNN_FEATURE_GRID, s) for s in m.shape[-2:]])
                for m in maps
            ]
            return torch.cat([g.flatten(1) for g in grids], dim=-1)  # (B, Σ C·h·w)
        blocks = self.backbone.forward_intermediates(
            x,
            indices=2,
            return_prefix_tokens=True,
            norm=True,
            output_fmt="NLC",
            intermediates_only=True,
        )
        return torch.cat([prefix[:, 0] for _, prefix in blocks], dim=-1)

    @property
    def has_cls(self) -> bool:
        """A ViT with a [CLS] token (the attention maps read its row)."""
        return self.is_vit and getattr(self.backbone, "cls_token", None) is not None

    @torch.no_grad()
    def cls_attention(self, images: torch.Tensor) -> torch.Tensor:
        """The last block's attention of the [CLS] token over the patches, per head:
        ``(B, heads, P)`` for float images ``(B, C, H, W)`` in [0, 1], each row summing to at
        most 1 (the rest goes to [CLS] itself and any register tokens).

        Computed from the block's own weights on its input: ``softmax(q_cls · kᵀ · scale)``
        with ``q, k`` from the block's ``qkv`` after its first norm (and ``q_norm`` /
        ``k_norm``), as the paper's Fig. 13 and DINO read it.
        """
        if not self.has_cls:
            name = self.config["backbone"]
            raise ValueError(f"attention maps need a ViT with a [CLS] token, {name!r} is not one")
        block = self.backbone.blocks[-1]
        seen = []
        hook = block.register_forward_pre_hook(lambda module, args: seen.append(args[0]))
        try:
            self.backbone.forward_features(self.normalize(images))
        finally:
            hook.remove()
        x = block.norm1(seen[0])  # (B, N, C): the block's input, normalised as it does
        attn = block.attn
        B, N, _ = x.shape
        qkv = attn.qkv(x).reshape(B, N, 3, attn.num_heads, attn.head_dim).permute(2, 0, 3, 1, 4)
        q, k = attn.q_norm(qkv[0]), attn.k_norm(qkv[1])  # (B, heads, N, head_dim)
        weights = (q[:, :, :1] * attn.scale @ k.transpose(-2, -1)).softmax(-1)  # (B, h, 1, N)
        return weights[:, :, 0, self.backbone.num_prefix_tokens :]  # (B, heads, P)

    @torch.no_grad()
    def patch_tokens(self, images: torch.Tensor) -> torch.Tensor:
        """Last-layer normalised patch tokens (B, P, F) of a ViT backbone, P = (H/p)·(W/p)."""
        if not self.is_vit:
            name = self.config["backbone"]
            raise ValueError(f"patch tokens need a ViT backbone, {name!r} is not one")
        tokens = self.backbone.forward_features(self.normalize(images))  # (B, prefix + P, F)
        return tokens[:, self.backbone.num_prefix_tokens :]


def random_twin(encoder: Encoder, seed: int = 0) -> Encoder:
    """The same architecture as ``encoder`` at a seeded random initialisation, in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return Encoder(**encoder.config).eval()


def encoder_from_checkpoint(ckpt: dict) -> Encoder:
    """The encoder stored in a loaded ``lejepa-viz train`` checkpoint dict, in eval mode."""
    if not isinstance(ckpt, dict) or "encoder_config" not in ckpt or "model" not in ckpt:
        raise ValueError("not a lejepa-viz checkpoint (needs encoder_config and model)")
    encoder = Encoder(**ckpt["encoder_config"])
    prefix = "encoder."  # the checkpoint holds the whole model: encoder + online probe
    encoder.load_state_dict(
        {k[len(prefix) :]: v for k, v in ckpt["model"].items() if k.startswith(prefix)}
    )
    return encoder.eval()


def load_encoder(path: str, map_location: str | torch.device = "cpu") -> Encoder:
    """The trained encoder of a ``lejepa-viz train`` checkpoint, in eval mode.

    Its ``features(images)`` takes float images in [0, 1] of shape (N, C, H, W) at the training
    resolution and normalises them itself.
    """
    try:
        return encoder_from_checkpoint(load_checkpoint(path)).to(map_location)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
