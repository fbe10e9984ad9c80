"""The encoder and its readouts (probe features, patch tokens, [CLS] attention, BatchNorm
statistics) against a second path: forward hooks on timm modules, attention by hand."""

import math

import pytest
import torch

from lejepa_viz.model import (
    CNN_FEATURE_GRID,
    CNN_FEATURE_LEVELS,
    Encoder,
    batch_statistics,
    batchnorms,
    cls_attention,
    patch_tokens,
    precise_bn,
    probe_features,
    random_twin,
)


def hooked(module: torch.nn.Module, names: list[str], x: torch.Tensor) -> list[torch.Tensor]:
    """Run ``module(x)`` and return the outputs of its submodules ``names``, in that order."""
    outputs, handles = {}, []
    for name in names:
        sub = module.get_submodule(name)
        handles.append(sub.register_forward_hook(lambda m, i, o, n=name: outputs.__setitem__(n, o)))
    try:
        module(x)
    finally:
        for h in handles:
            h.remove()
    return [outputs[n] for n in names]


def grid_mean(m: torch.Tensor, cells: int) -> torch.Tensor:
    """Average of ``m`` (B, C, H, W) over a ``cells x cells`` grid of equal blocks, flattened
    (B, C·cells²) — by reshaping, a second path to adaptive pooling when ``cells`` divides H."""
    B, C, H, W = m.shape
    cells_h, cells_w = min(cells, H), min(cells, W)
    blocks = m.reshape(B, C, cells_h, H // cells_h, cells_w, W // cells_w)
    return blocks.mean((3, 5)).flatten(1)


@pytest.mark.parametrize("backbone", ["test_byobnet", "test_resnet"])
def test_cnn_features_are_the_last_levels_on_a_coarse_grid(backbone):
    enc = Encoder.build(backbone, 1, 32, mean=(0.3,), std=(0.4,)).eval()
    images = torch.rand(5, 1, 32, 32)
    levels = [info["module"] for info in enc.backbone.feature_info][-CNN_FEATURE_LEVELS:]
    maps = hooked(enc.backbone, levels, (images - 0.3) / 0.4)
    expected = torch.cat([grid_mean(m, CNN_FEATURE_GRID) for m in maps], dim=-1)
    with torch.no_grad():
        torch.testing.assert_close(probe_features(enc, images), expected)


def test_vit_features_are_normed_cls_tokens_of_the_last_two_blocks():
    enc = Encoder.build("vit_tiny_patch16_224", 3, 32, mean=(0.5,) * 3, std=(0.25,) * 3).eval()
    images = torch.rand(2, 3, 32, 32)
    last = len(enc.backbone.blocks)
    blocks = hooked(
        enc.backbone, [f"blocks.{last - 2}", f"blocks.{last - 1}"], (images - 0.5) / 0.25
    )
    norm = enc.backbone.norm
    expected = torch.cat([norm(b)[:, 0] for b in blocks], dim=-1)
    with torch.no_grad():
        torch.testing.assert_close(probe_features(enc, images), expected)
        tokens = patch_tokens(enc, images)
    assert tokens.shape == (2, (32 // 16) ** 2, enc.embed_dim)
    torch.testing.assert_close(tokens, norm(blocks[1])[:, enc.backbone.num_prefix_tokens :])


def test_patch_tokens_need_a_vit():
    enc = Encoder.build("test_byobnet", 1, 28, mean=(0.3,), std=(0.4,))
    with pytest.raises(ValueError, match="patch tokens need a ViT backbone .*'test_byobnet'"):
        patch_tokens(enc, torch.rand(1, 1, 28, 28))


def test_forward_returns_embedding_and_projection():
    enc = Encoder.build("test_byobnet", 1, 28, mean=(0.3,), std=(0.4,), proj_hidden=64, proj_dim=16)
    emb, z = enc(torch.rand(4, 1, 28, 28))
    assert emb.shape == (4, enc.embed_dim) and z.shape == (4, 16)
    with pytest.raises(ValueError, match="mean and std need 1 values"):
        Encoder.build("test_byobnet", 1, 28, mean=(0.3, 0.3), std=(0.4,))


def test_forward_views_is_each_view_through_the_backbone_then_one_projector():
    torch.manual_seed(0)
    enc = Encoder.build("test_byobnet", 1, 28, mean=(0.3,), std=(0.4,), proj_hidden=32, proj_dim=8)
    g, loc = torch.rand(2, 5, 1, 28, 28), torch.rand(3, 5, 1, 14, 14)
    z, emb = enc.forward_views(g, loc)
    assert z.shape == (5, 5, 8) and emb.shape == (5, 5, enc.embed_dim)
    z_global, _ = enc.forward_views(g, loc[:0])  # no local views
    assert z_global.shape == (2, 5, 8)
    # by hand, in eval mode (BatchNorm per sample): each image of each view on its own
    enc.eval()
    z, emb = enc.forward_views(g, loc)
    with torch.no_grad():
        for v, views in enumerate((*g, *loc)):
            for n, image in enumerate(views):
                e, zz = enc(image[None])
                torch.testing.assert_close(z[v, n], zz[0], rtol=1e-4, atol=1e-5)
                torch.testing.assert_close(emb[v, n], e[0], rtol=1e-4, atol=1e-5)


def test_cls_attention_is_the_blocks_own_attention_row():
    torch.manual_seed(0)
    enc = Encoder.build("test_vit", 3, 64, (0.5,) * 3, (0.25,) * 3).eval()
    images = torch.rand(3, 3, 64, 64)
    ours = cls_attention(enc, images)  # (B, heads, P)
    block = enc.backbone.blocks[-1]
    seen = []
    hook = block.register_forward_pre_hook(lambda m, a: seen.append(a[0]))
    with torch.no_grad():
        enc.backbone.forward_features(enc.normalize(images))
    hook.remove()
    x = block.norm1(seen[0])  # (B, N, C)
    B, N, C = x.shape
    heads = block.attn.num_heads
    # by hand from the qkv weights, the whole attention matrix
    q, k, v = (x @ block.attn.qkv.weight.T + block.attn.qkv.bias).split(C, dim=-1)
    q, k, v = (t.view(B, N, heads, C // heads).transpose(1, 2) for t in (q, k, v))
    full = (q @ k.transpose(-2, -1) / math.sqrt(C // heads)).softmax(-1)  # (B, h, N, N)
    torch.testing.assert_close(ours, full[:, :, 0, 1:], rtol=1e-5, atol=1e-6)
    # and that matrix is the one the block uses: its output is the module's own
    out = block.attn.proj((full @ v).transpose(1, 2).reshape(B, N, C))
    with torch.no_grad():
        torch.testing.assert_close(out, block.attn(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="CLS"):
        cls_attention(
            Encoder.build("test_byobnet", 1, 28, (0.3,), (0.4,)), torch.rand(1, 1, 28, 28)
        )


def test_batch_statistics_and_precise_bn_touch_only_the_running_statistics():
    import copy

    torch.manual_seed(0)
    enc = Encoder.build("test_byobnet", 1, 28, (0.3,), (0.4,), proj_hidden=32, proj_dim=8).eval()
    images = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
    x = images.float() / 255
    before = copy.deepcopy(enc.state_dict())
    with torch.no_grad(), batch_statistics(enc):
        z = enc(x)[1]
    assert not enc.training and all(torch.equal(before[k], v) for k, v in enc.state_dict().items())
    twin = copy.deepcopy(enc).train()  # a train-mode forward normalises with the batch's stats
    with torch.no_grad():
        torch.testing.assert_close(z, twin(x)[1])
    # precise BN: the first BatchNorm's running mean is the mean of its inputs over the images
    first = batchnorms(enc)[0]
    inputs = []
    hook = first.register_forward_hook(lambda m, a, out: inputs.append(a[0]))
    precise_bn(enc, images, batch_size=16)  # four equal batches: the mean of their means
    hook.remove()
    seen = torch.cat(inputs)  # (64, C, h, w)
    torch.testing.assert_close(first.running_mean, seen.mean((0, 2, 3)), rtol=1e-5, atol=1e-6)
    assert not enc.training and first.momentum == 0.1


def test_an_encoder_wraps_the_backbone_it_is_given_and_rebuilds_from_its_config():
    import timm

    backbone = timm.create_model("vit_pico_patch8", num_classes=0, img_size=32)
    enc = Encoder(backbone, name="vit_pico_patch8", image_size=32, mean=(0.5,) * 3, std=(0.2,) * 3)
    assert enc.backbone is backbone  # wrapped, not rebuilt
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(enc.eval()(x)[0], backbone.eval()((x - 0.5) / 0.2))
    config = enc.config
    assert config["backbone"] == "vit_pico_patch8" and config["in_chans"] == 3
    twin = random_twin(enc, seed=3)
    assert twin.config == config and twin.backbone is not backbone
    assert all(a.shape == b.shape for a, b in zip(twin.parameters(), enc.parameters(), strict=True))
    # seeded: the same twin twice, and the caller's random stream is left alone
    state = torch.get_rng_state()
    again = random_twin(enc, seed=3)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(
        torch.equal(a, b) for a, b in zip(twin.parameters(), again.parameters(), strict=True)
    )
    # a ViT is used at another size with its position embeddings resampled; a CNN refuses
    enc.set_input_size(48)
    assert enc.image_size == 48 and patch_tokens(enc, torch.rand(1, 3, 48, 48)).shape[1] == 36
    with pytest.raises(ValueError, match="only a ViT changes its input size"):
        Encoder.build("test_byobnet", 1, 28, (0.3,), (0.4,)).set_input_size(32)
    with pytest.raises(ValueError, match="mean and std need"):
        Encoder(backbone, name="x", image_size=32, mean=(0.5,), std=(0.2, 0.2))


def test_cls_attention_leaves_the_fused_kernel_as_it_was():
    enc = Encoder.build("test_vit", 3, 64, (0.5,) * 3, (0.25,) * 3).eval()
    attn = enc.backbone.blocks[-1].attn
    for fused in (True, False):
        attn.fused_attn = fused
        rows = cls_attention(enc, torch.rand(2, 3, 64, 64))
        assert attn.fused_attn is fused and not attn.attn_drop._forward_hooks
        assert rows.shape == (2, attn.num_heads, 16) and bool((rows.sum(-1) <= 1 + 1e-6).all())
