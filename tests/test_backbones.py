"""lejepa_viz.backbones: every published layout, built here from a seeded random timm model,
loads back to the same patch tokens; damaged files and missing networks end in messages."""

import json

import pytest
import timm
import torch
from safetensors.torch import save_file

from lejepa_viz.backbones import find_prefix, load_backbone, load_encoder, parse_hub
from lejepa_viz.cli import main
from lejepa_viz.model import Encoder
from lejepa_viz.viz.patches import patch_tokens

# ViT-S/16's width and heads at two blocks and 64 px: the real layouts' key names and shapes,
# small enough for a test
ARCH = dict(depth=2, img_size=64, num_classes=0, dynamic_img_size=True)


@pytest.fixture(scope="module")
def source():
    torch.manual_seed(0)
    return timm.create_model("vit_small_patch16_224", pos_embed="learn", **ARCH).eval()


@pytest.fixture(scope="module")
def x():
    return torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))


def same_tokens(backbone, source, x, atol=1e-5):
    with torch.no_grad():
        got = backbone.model.forward_features(x)
        expected = source.forward_features(x)
    torch.testing.assert_close(got, expected, atol=atol, rtol=1e-4)


def test_a_lightning_checkpoint_loads_its_backbone_under_the_found_prefix(tmp_path, source, x):
    """Lightly's LeJEPA layout: a Lightning .ckpt whose state_dict holds the timm ViT under
    ``backbone.`` beside the projection head, the online classifier and SIGReg's buffers."""
    state = {f"backbone.{k}": v for k, v in source.state_dict().items()}
    state["projection_head.layers.0.weight"] = torch.randn(2048, 384)
    state["online_classifier.classification_head.weight"] = torch.randn(1000, 384)
    state["criterion.sigreg.t"] = torch.linspace(0, 3, 17)
    ckpt = {
        "epoch": 99,
        "global_step": 250_000,
        "pytorch-lightning_version": "2.5.1",
        "state_dict": state,
        "hyper_parameters": {"batch_size_per_device": 128, "num_classes": 1000},
        "optimizer_states": [{"state": {}, "param_groups": [{"lr": 0.001}]}],
    }
    path = tmp_path / "epoch=099-val_online_cls_top1=0.5623.ckpt"
    torch.save(ckpt, path)
    b = load_backbone(path)
    same_tokens(b, source, x)
    assert "prefix 'state_dict.backbone.'" in b.source
    assert b.kwargs["embed_dim"] == 384 and b.kwargs["depth"] == 2 and b.image_size == 64
    assert b.name == "vit_small_patch16_64" or b.kwargs["patch_size"] == 16
    assert not b.model.training


def test_the_ok_ai_folder_and_its_fp16_epoch_checkpoints(tmp_path, source, x):
    """OK-AI's hub layout: ``config.json`` and ``model.safetensors`` with every key under
    ``backbone.`` and the loss's projection ``backbone.cva_module_proj.*`` beside the encoder;
    the intermediate checkpoints as fp16 ``pytorch_model.bin``."""
    state = {f"backbone.{k}": v for k, v in source.state_dict().items()}
    for i, shape in ((0, (2048, 384)), (2, (2048, 2048)), (4, (256, 2048))):
        state[f"backbone.cva_module_proj.mlp.{i}.weight"] = torch.randn(shape)
        state[f"backbone.cva_module_proj.mlp.{i}.bias"] = torch.randn(shape[0])
    config = {
        "model_type": "vitv2",
        "embed_dim": 384,
        "depth": 2,
        "num_heads": 6,
        "patch_size": 16,
        "img_size": 64,
        "init_values": None,
    }
    folder = tmp_path / "lejepa-vits16-pretrain-in1k"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    save_file(state, folder / "model.safetensors")
    b = load_backbone(folder)
    same_tokens(b, source, x)
    assert "prefix 'backbone.'" in b.source and "left out ['cva_module_proj']" in b.source
    epoch = folder / "checkpoints" / "ep010"
    epoch.mkdir(parents=True)
    (epoch / "config.json").write_text(json.dumps(config))
    torch.save({k: v.half() for k, v in state.items()}, epoch / "pytorch_model.bin")
    same_tokens(load_backbone(epoch), source.half().float(), x, atol=5e-3)


def test_a_plain_state_dict_and_a_safetensors_file(tmp_path, source, x):
    torch.save(source.state_dict(), tmp_path / "vit.pth")
    save_file(source.state_dict(), tmp_path / "vit.safetensors")
    for name in ("vit.pth", "vit.safetensors"):
        b = load_backbone(tmp_path / name)
        same_tokens(b, source, x)
        assert "no prefix" in b.source
    # the architecture asked for is built as named (12 blocks), not inferred: 10 blocks missing
    with pytest.raises(ValueError, match=r"120 missing keys: \['blocks\.2\.norm1\.weight'"):
        load_backbone(tmp_path / "vit.pth", backbone="vit_small_patch16_224")


def test_the_encoder_of_the_pictures_reads_the_same_tokens(tmp_path, source, x):
    torch.save(
        {"state_dict": {f"backbone.{k}": v for k, v in source.state_dict().items()}},
        tmp_path / "w.ckpt",
    )
    encoder = load_encoder(tmp_path / "w.ckpt")
    mean = torch.tensor(encoder.config["mean"]).view(3, 1, 1)
    std = torch.tensor(encoder.config["std"]).view(3, 1, 1)
    with torch.no_grad():
        expected = source.forward_features((x - mean) / std)[:, source.num_prefix_tokens :]
    torch.testing.assert_close(patch_tokens(encoder, x).view(2, 16, -1), expected)


def test_damaged_files_list_what_does_not_fit(tmp_path, source):
    state = source.state_dict()
    torch.save({k: v for k, v in state.items() if not k.startswith("blocks.1.")}, tmp_path / "a.pt")
    with pytest.raises(ValueError, match="does not fit") as err:
        load_backbone(tmp_path / "a.pt", backbone="vit_small_patch16_224")
    assert "missing keys" in str(err.value) and "blocks.1.attn.qkv.weight" in str(err.value)
    wrong = dict(state)
    wrong["blocks.0.mlp.fc1.weight"] = torch.zeros(100, 384)
    torch.save(wrong, tmp_path / "b.pt")
    with pytest.raises(ValueError, match="shape mismatches") as err:
        load_backbone(tmp_path / "b.pt", backbone="vit_small_patch16_224")
    assert "blocks.0.mlp.fc1.weight: (100, 384) in the file, (1536, 384) in the model" in str(
        err.value
    )
    extra = {**state, "blocks.0.attn.q_norm.weight": torch.ones(64)}
    torch.save(extra, tmp_path / "c.pt")
    with pytest.raises(ValueError, match="1 unexpected keys"):
        load_backbone(tmp_path / "c.pt")
    torch.save({"a": state, "b": state}, tmp_path / "two.pt")
    with pytest.raises(ValueError, match=r"several backbones in one file.*\['a\.', 'b\.'\]"):
        load_backbone(tmp_path / "two.pt")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_backbone(tmp_path / "nope.safetensors")


class Opaque:  # a pickled object weights_only=True refuses
    def __init__(self):
        self.note = "trained"


def test_a_pickle_beyond_tensors_needs_trust(tmp_path, source, x):
    torch.save({"state_dict": source.state_dict(), "extra": Opaque()}, tmp_path / "w.pth")
    with pytest.raises(ValueError, match=r"arbitrary code.*trust=True \(CLI: --trust-weights\)"):
        load_backbone(tmp_path / "w.pth")
    same_tokens(load_backbone(tmp_path / "w.pth", trust=True), source, x)


def test_hf_without_a_network_says_what_to_download_and_where(monkeypatch):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def offline(*args, **kwargs):
        raise LocalEntryNotFoundError("offline")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    with pytest.raises(ConnectionError) as err:
        load_backbone("hf:OK-AI/lejepa-vits16-pretrain-in1k@main/checkpoints/ep010")
    message = str(err.value)
    url = "https://huggingface.co/OK-AI/lejepa-vits16-pretrain-in1k/resolve/main/checkpoints/ep010/"
    assert f"{url}model.safetensors" in message and f"{url}config.json" in message
    assert "pass that folder" in message


def test_hub_specs_and_prefixes_parse():
    assert parse_hub("OK-AI/lejepa-vitb16-pretrain-in1k") == (
        "OK-AI/lejepa-vitb16-pretrain-in1k",
        None,
        None,
    )
    assert parse_hub("org/name@v1.0") == ("org/name", "v1.0", None)
    with pytest.raises(ValueError, match="ORG/NAME"):
        parse_hub("just-a-name")
    assert find_prefix(["patch_embed.proj.weight", "blocks.0.x"]) == ""
    with pytest.raises(ValueError, match="not a ViT"):
        find_prefix(["conv1.weight"])
    with pytest.raises(ValueError, match="neither a file"):
        load_backbone("no_such_model_or_file")


def test_pca_takes_any_weights_from_the_command_line(tmp_path, source):
    state = {f"backbone.{k}": v for k, v in source.state_dict().items()}
    save_file(state, tmp_path / "model.safetensors")
    (tmp_path / "config.json").write_text("{}")
    out = tmp_path / "maps"
    assert main(["pca", "--weights", str(tmp_path), "--out", str(out)]) == 0
    assert len(list(out.glob("*.png"))) == 7  # the bundled photos


def test_a_run_keeps_its_backbones_and_evolve_draws_them(tmp_path):
    """``keep_backbones``: steps 0, 8 and the end, each a folder load_backbone reads back to
    the run's own weights (float16); ``lejepa-viz evolve`` on the three writes one GIF."""
    import imageio.v3 as iio

    from conftest import tiny_config
    from lejepa_viz.train import train

    cfg = tiny_config(
        tmp_path / "run",
        dataset="photos",
        backbone="vit_pico_patch8",
        image_size=32,
        steps=10,
        batch_size=4,
        keep_backbones=True,
        snapshot_images=4,
    )
    train(cfg)
    kept = sorted((tmp_path / "run" / "backbones").iterdir())
    assert [p.name for p in kept] == ["step000000", "step000008", "step000010"]
    final = load_encoder(str(tmp_path / "run" / "checkpoint.pt"))
    b = load_backbone(kept[-1])
    assert b.image_size == 32 and b.mean == final.config["mean"]
    assert b.name == "vit_pico_patch8" and b.kwargs == {}  # as the run named it, not a guess
    for key, value in final.backbone.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[key], value.half().float())
    out = tmp_path / "evolve.gif"
    argv = ["evolve", "--weights", *map(str, kept), "--images", str(tmp_path / "imgs")]
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(2):
        iio.imwrite(
            imgs / f"p{i}.png", torch.randint(0, 256, (40, 40, 3), dtype=torch.uint8).numpy()
        )
    assert main([*argv, "--out", str(out)]) == 0
    assert iio.imread(out, index=None).shape[0] == 3  # one frame per checkpoint


# --- load_encoder: what the apps call once ------------------------------------------------


SIZE = 64


@pytest.fixture(scope="module")
def images():
    return torch.randint(
        0, 256, (5, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(1), dtype=torch.uint8
    )


def test_local_weights_pt_and_safetensors_give_the_source_models_tokens(tmp_path, images):
    torch.manual_seed(5)
    source = timm.create_model("test_vit", img_size=SIZE)  # a classifier: its head is dropped
    state = source.state_dict()
    torch.save({"state_dict": {f"module.{k}": v for k, v in state.items()}}, tmp_path / "w.pth")
    save_file(state, tmp_path / "w.safetensors")
    x = images.float() / 255
    with torch.no_grad():
        expected = source.forward_features((x - 0.5) / 0.5)[:, source.num_prefix_tokens :]
    for name in ("w.pth", "w.safetensors"):
        enc = load_encoder(tmp_path / name, backbone="test_vit")
        assert not enc.training and enc.name == "test_vit" and enc.image_size == SIZE
        torch.testing.assert_close(patch_tokens(enc, images).view(5, 16, -1), expected)
    torch.save({k: v for k, v in state.items() if k != "norm.weight"}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"does not fit: 1 missing keys: \['norm.weight'\]"):
        load_encoder(tmp_path / "other.pt", backbone="test_vit")
    with pytest.raises(FileNotFoundError, match="nope.pt does not exist"):
        load_encoder(tmp_path / "nope.pt", backbone="test_vit")


def test_a_checkpoint_gives_its_whole_encoder_at_any_resolution(tmp_path, images):
    torch.manual_seed(0)
    encoder = Encoder.build("test_vit", 3, SIZE, mean=(0.5,) * 3, std=(0.25,) * 3).eval()
    model = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    model["probe.weight"] = torch.zeros(3, encoder.embed_dim)  # the online probe rides along
    torch.save({"encoder_config": encoder.config, "model": model}, tmp_path / "run.pt")
    enc = load_encoder(tmp_path / "run.pt")
    assert enc.config == encoder.config and not enc.training
    for key, value in encoder.state_dict().items():  # the projector too
        torch.testing.assert_close(enc.state_dict()[key], value)
    larger = load_encoder(tmp_path / "run.pt", image_size=96)
    assert larger.image_size == 96
    assert patch_tokens(larger, images).shape == (5, 6, 6, encoder.embed_dim)
    with pytest.raises(FileNotFoundError, match="missing.pt does not exist"):
        load_encoder(tmp_path / "missing.pt")
    with pytest.raises(ValueError, match="image_size must be an integer >= 1"):
        load_encoder(tmp_path / "run.pt", image_size=0)
    cnn = Encoder.build("test_resnet", 3, 32, mean=(0.5,) * 3, std=(0.5,) * 3)
    cnn_model = {f"encoder.{k}": v for k, v in cnn.state_dict().items()}
    torch.save({"encoder_config": cnn.config, "model": cnn_model}, tmp_path / "cnn.pt")
    assert load_encoder(tmp_path / "cnn.pt").name == "test_resnet"  # loads; maps refuse it
    with pytest.raises(ValueError, match="only a ViT changes its input size"):
        load_encoder(tmp_path / "cnn.pt", image_size=64)


def test_pretrained_weights_without_a_network_say_what_to_do(monkeypatch):
    from huggingface_hub.errors import LocalEntryNotFoundError

    real = timm.create_model

    def offline(name, *args, pretrained=False, **kwargs):
        if pretrained:
            raise LocalEntryNotFoundError("cannot find the requested files in the local cache")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(timm, "create_model", offline)
    with pytest.raises(ConnectionError, match="pretrained weights for 'test_vit'") as err:
        load_encoder("test_vit")
    message = str(err.value)
    assert "network" in message and "local weight file or folder" in message
    assert "LocalEntryNotFoundError" in message
    with pytest.raises(ValueError, match="timm has no pretrained weights for 'vit_pico_patch8'"):
        load_encoder("vit_pico_patch8")
