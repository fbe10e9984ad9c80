"""The gallery: train (or reuse) two small models on the embedded data, then draw every picture.

``make_gallery("eval")`` (CLI: ``lejepa-viz gallery --out eval``) writes

- ``convergence.gif``: a CNN's embeddings of Fashion-MNIST test images during LeJEPA training;
- ``flow.gif``: a two-moons point cloud optimised by SIGReg alone;
- ``lambda.gif``: a tiny encoder trained with λ = 0 (collapse) beside λ = 0.1;
- ``pca/<photo>.png``: photo | PCA map of a LeJEPA ViT's patch features, for the bundled photos;
- ``video.gif``: a camera path over a bundled photo beside its patch-feature map;
- ``README.md``: what each file shows, the command and settings that made it, and the numbers
  (the CNN's linear probe, the ViT's mask IoU on synthetic scenes against random init).

Every file is written to a temporary name and renamed, so an interrupted gallery leaves no
half-written file. Runs go to ``runs/gallery/<name>`` and are reused when their configuration
matches (``reuse=False`` trains again).
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, replace
from pathlib import Path

from .evaluate import evaluate_run
from .model import load_patch_encoder
from .pictures import flow_gif, lambda_gif
from .runs import Run, atomic_path
from .train import TrainConfig, cached_train, train
from .viz.convergence import animate_snapshots
from .viz.pca import pca_maps
from .viz.scenes import scene_iou
from .viz.video import video_gif

# The ViT for patch maps: a 4-block ViT-Tiny with 8 x 8 patches on 64 x 64 crops of the
# bundled photos (see model.py's vit_pico_patch8); measured by the scene IoU in README.md.
PHOTO_VIT = TrainConfig(
    dataset="photos",
    backbone="vit_pico_patch8",
    image_size=64,
    batch_size=64,
    num_local=2,
    lr=2e-3,
    lam=0.05,
    final_probe=False,
)
CNN = TrainConfig(dataset="fashion-mnist")
EVAL_SUBSET = (10_000, 5_000)  # the CNN's results table: a seeded subset of each split


def trained_run(cfg: TrainConfig, reuse: bool = True) -> dict:
    """``train(cfg)``'s final metrics; with ``reuse``, a finished run of the same configuration
    in ``cfg.out`` is loaded instead (:func:`lejepa_viz.train.cached_train`)."""
    if not reuse:
        return train(cfg)
    result = cached_train(cfg)
    if result["cached"]:
        print(f"reusing {cfg.out} (pass --no-reuse to train again)")
    return result


def make_gallery(
    out: str | os.PathLike = "eval",
    runs: str | os.PathLike = "runs/gallery",
    minutes: float = 3.0,
    reuse: bool = True,
    *,
    steps: int | None = None,
    cnn: TrainConfig = CNN,
    vit: TrainConfig = PHOTO_VIT,
    scenes: int = 96,
    flow_steps: int = 300,
    lambda_steps: int = 120,
    video_frames: int = 60,
    eval_subset: tuple[int | None, int | None] = EVAL_SUBSET,
    progress: bool = True,
) -> Path:
    """Train or reuse the gallery's models, draw every picture into ``out``, write its README.

    Args:
        out: the gallery folder (created).
        runs: where the models train.
        minutes: wall-clock budget of each training run.
        reuse: reuse a finished run of the same configuration.
        steps: train each model for this many steps instead (tests, quick looks).
        cnn, vit: the two training configurations (``out`` is set under ``runs``).
        scenes: number of synthetic scenes for the IoU of the PCA maps.
        flow_steps, lambda_steps: steps of the gradient flow and of the λ runs.
        video_frames: frames of the camera-path video.
        eval_subset: training and test images of the CNN's results table (None: a whole split).
        progress: progress bars.

    Returns:
        The path of ``out/README.md``.
    """
    out, runs = Path(out), Path(runs)
    budget = dict(max_minutes=None if steps else minutes, steps=steps, progress=progress)
    cnn = replace(cnn, out=str(runs / cnn.dataset), **budget)
    vit = replace(vit, out=str(runs / f"{vit.dataset}-vit"), **budget)
    cnn_metrics, vit_metrics = trained_run(cnn, reuse), trained_run(vit, reuse)
    cnn_run, vit_run = Run(cnn.out), Run(vit.out)
    files, timings = draw_pictures(
        out, cnn_run, vit_run, flow_steps, lambda_steps, video_frames, progress
    )
    num_train, num_test = eval_subset
    table = evaluate_run(
        cnn_run.folder, num_train=num_train, num_test=num_test, draws=3, progress=progress
    )
    iou = scene_iou(
        load_patch_encoder(checkpoint=vit_run.path(Run.CHECKPOINT)),
        num_scenes=scenes,
        size=vit.image_size,
    )
    models = ((cnn, cnn_run, cnn_metrics), (vit, vit_run, vit_metrics))
    with atomic_path(out / "README.md") as tmp:
        tmp.write_text(render_readme(files, timings, *models, iou, (table, eval_subset)))
    print(table["table"])
    print(
        f"PCA-map mask IoU on {scenes} synthetic scenes: LeJEPA ViT {iou['trained'].iou:.3f}, "
        f"random init {iou['random'].iou:.3f}, raw pixels {iou['pixels'].iou:.3f}"
    )
    print(f"gallery in {out}/ (README.md lists each file)")
    return out / "README.md"


def draw_pictures(
    out: Path, cnn: Run, vit: Run, flow_steps: int, lambda_steps: int, frames: int, progress: bool
) -> tuple[list[tuple[str, str, str]], dict[str, float]]:
    """Every picture of the gallery: ``[(file, what it shows, command)]`` and the seconds each
    took."""
    snapshots, vit_ckpt = cnn.path(Run.SNAPSHOTS), vit.path(Run.CHECKPOINT)
    vit_224 = load_patch_encoder(checkpoint=vit_ckpt, image_size=224)  # maps drawn at 224 px
    pictures = [
        (
            "convergence.gif",
            "the CNN's projector outputs for 512 fixed test images during "
            "training: (a) a random plane over the N(0, I) 1σ / 2σ circles, (b) three random "
            "1-D slices against N(0, 1), (c) the ECF gap of those slices, (d) the loss curves",
            f"lejepa-viz animate --snapshots {snapshots} --out {out}/convergence.gif",
            lambda: animate_snapshots(snapshots, out / "convergence.gif", progress=progress),
        ),
        (
            "flow.gif",
            f"two moons in 2-D optimised by SIGReg alone (Adam, {flow_steps} steps): "
            "the cloud becomes an isotropic Gaussian",
            f"lejepa-viz flow --shape moons --steps {flow_steps} --out {out}/flow.gif",
            lambda: flow_gif(out / "flow.gif", "moons", steps=flow_steps, progress=progress),
        ),
        (
            "lambda.gif",
            "a tiny MLP encoder on the digits trained with the LeJEPA loss, λ = 0 "
            "(pure invariance: it collapses) beside λ = 0.1 (SIGReg: an isotropic Gaussian)",
            f"lejepa-viz lambda --lambdas 0 0.1 --steps {lambda_steps} --out {out}/lambda.gif",
            lambda: lambda_gif(
                out / "lambda.gif", (0.0, 0.1), steps=lambda_steps, progress=progress
            ),
        ),
        (
            "pca/",
            "each bundled photo beside the RGB map of the first three PCA components of "
            "the ViT's patch features (PCA fitted jointly over the photos, run at 224 px)",
            f"lejepa-viz pca --checkpoint {vit_ckpt} --out {out}/pca",
            lambda: pca_maps(None, encoder=vit_224, out_dir=out / "pca"),
        ),
        (
            "video.gif",
            "a camera path panning and zooming over a bundled photo, beside the "
            "per-patch map of the first PCA component (fitted over all frames, ViT run at 224 px)",
            f"lejepa-viz video --checkpoint {vit_ckpt} --out {out}/video.gif",
            lambda: video_gif(encoder=vit_224, out=out / "video.gif", num_frames=frames),
        ),
    ]
    timings = {}
    for name, _, _, make in pictures:
        start = time.perf_counter()
        make()
        timings[name] = time.perf_counter() - start
    return [(name, what, command) for name, what, command, _ in pictures], timings


def cli_options(cfg: TrainConfig) -> str:
    """The ``lejepa-viz train`` options that set ``cfg``'s non-default fields."""
    default = TrainConfig()
    return " ".join(
        f"--{k.replace('_', '-')} {v}"
        if not isinstance(v, bool)
        else f"--{'' if v else 'no-'}{k.replace('_', '-')}"
        for k, v in asdict(cfg).items()
        if v != getattr(default, k) and k not in {"progress"}
    )


def verdict(iou: dict) -> str:
    """One honest sentence on the IoU table."""
    gain = iou["trained"].iou - iou["random"].iou
    if gain > 0.02:
        return f"LeJEPA training raises the IoU by {gain:.3f} over the same ViT at random init."
    return (
        f"LeJEPA training does not beat random initialisation here ({gain:+.3f}): a few CPU "
        "minutes on seven photos teach the ViT which photo a patch comes from, not where a pasted "
        "shape ends. The maps look structured; this "
        "number says they do not yet segment objects. Read them with that in mind."
    )


def evaluation_note(run: Run, table: dict, subset: tuple[int | None, int | None]) -> str:
    """How the CNN's results table was made, with the command that makes it."""
    num_train, num_test = subset
    options = "".join(
        f" --{k} {v}"
        for k, v in (("num-train", num_train), ("num-test", num_test))
        if v is not None
    )
    where = (
        f"a seeded random subset of {num_train or 'all'} training and {num_test or 'all'} "
        "test images"
        if options
        else "the whole splits"
    )
    return (
        f"Frozen features, {where}; few-shot: mean ± std over 3 draws "
        f"(`lejepa-viz eval --checkpoint {run.path(Run.CHECKPOINT)}{options} --draws 3`)."
    )


def render_readme(files, timings, cnn_run, vit_run, iou, evaluation) -> str:
    """The gallery's README.md: what each file shows, how it was made, and the numbers."""
    lines = [
        "# Gallery",
        "",
        "Made by `lejepa-viz gallery` (the README's main job); every file is regenerated by it.",
        "",
        "| file | what it shows | command | seconds |",
        "|------|---------------|---------|--------:|",
    ]
    for name, what, command in files:
        lines.append(f"| [`{name}`]({name}) | {what} | `{command}` | {timings[name]:.0f} |")

    def model(label: str, run) -> str:
        cfg, folder, metrics = run
        done = f"{metrics.get('step')} steps in {metrics.get('elapsed_s', 0) / 60:.1f} min"
        line = f"- {label} (`{folder.folder}`, {done}): `lejepa-viz train {cli_options(cfg)}`"
        if metrics.get("linear_probe") is not None:
            line += (
                f"; frozen linear probe on the test split: **{100 * metrics['linear_probe']:.2f}%**"
            )
        return line + "."

    lines += [
        "",
        "## Models",
        "",
        model("CNN", cnn_run),
        model("ViT", vit_run),
        "",
        "## The CNN beside its baselines",
        "",
        evaluation_note(cnn_run[1], *evaluation),
        "",
        evaluation[0]["table"].rstrip(),
        "",
        "## How good are the PCA maps?",
        "",
        f"{iou['num_scenes']} synthetic {iou['size']} x {iou['size']} scenes (a shape cut from one "
        "bundled photo pasted on a texture from another; the true mask is known). The first PCA "
        "component of the patch features, fitted over all scenes, its sign set so that the "
        "centre is positive (no mask used), thresholded at 0: mean IoU with the true mask.",
        "",
        "| features | IoU | IoU, better sign (uses the masks) |",
        "|----------|----:|----:|",
        *[
            f"| {label} | {iou[key].iou:.3f} | {iou[key].oracle_iou:.3f} |"
            for key, label in (
                ("trained", "LeJEPA ViT (this gallery)"),
                ("random", "same ViT at random initialisation"),
                ("pixels", "raw patch pixels"),
            )
        ],
        "",
        verdict(iou),
        "",
    ]
    return "\n".join(lines)
