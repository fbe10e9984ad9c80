"""The gallery: train (or reuse) two small models on the embedded data, then draw every picture.

``make_gallery("eval")`` (CLI: ``lejepa-viz gallery --out eval``) is a table of picture specs
(:func:`picture_specs`): each names a file, says what it shows and holds the ``lejepa-viz``
arguments that make it. The gallery runs them through the command line (:func:`lejepa_viz.cli.
run`), so each README row shows the command that ran, and the number that says the picture
shows what it is named for comes from the record the command returned:

- ``convergence.gif``: a CNN's embeddings of Fashion-MNIST during LeJEPA training;
- ``flow.gif``: a ring of points moved by gradient descent on SIGReg alone;
- ``lambda.gif``: a tiny encoder trained with λ = 0 (collapse) beside λ > 0 (N(0, I));
- ``maps.png``, ``video.gif``, ``evolution.gif``: a ViT trained on the scene world
  (``load_dataset("scenes")``): its PCA maps and [CLS] attention masks of held-out scenes beside
  their true masks and random initialisation, over an object crossing a scene, over training;
- ``maps-photos.png``, ``pca/``, ``video-photo.gif``: the same ViT on the bundled photos, out
  of its training distribution;
- ``README.md``: rendered from those records, the CNN's results table and the maps' IoU on
  held-out scenes with known masks; a hand-written tail after :data:`BY_HAND` is kept.

Every file is written to a temporary name and renamed, so an interrupted gallery leaves no
half-written file. Runs go to ``runs/gallery/<name>`` and are reused when their configuration
matches (``reuse=False`` trains again).
"""

from __future__ import annotations

import argparse
import os
import shlex
import time
from dataclasses import dataclass, replace
from pathlib import Path

from . import cli
from .data.shapes import HELD_OUT
from .runs import Run, atomic_path
from .train import TrainConfig
from .viz.attention import KEEP
from .viz.patches import MAP_KINDS
from .viz.scenes import iou_sentence, iou_table, verdict

# The ViT for patch maps: a 4-block ViT-Tiny with 8 x 8 patches (model.py's vit_pico_patch8)
# trained on 64 x 64 scenes of the scene world, its recipe the best of eval/README.md's search,
# measured by the IoU of its maps on held-out scenes.
SCENE_VIT = TrainConfig(
    dataset="scenes",
    backbone="vit_pico_patch8",
    image_size=64,
    batch_size=64,
    num_local=2,
    global_scale=(0.5, 1.0),
    local_scale=(0.1, 0.35),
    lr=2e-3,
    warmup_steps=30,
    lam=0.05,
    final_probe=False,
    keep_backbones=True,  # for evolution.gif
)
# The CNN of the convergence picture, with a λ above the default chosen for the picture (the
# README says what the default's last frame reads after the same three minutes).
CNN = TrainConfig(dataset="fashion-mnist", lam=0.15)
EVAL_SUBSET = (10_000, 5_000)  # the CNN's results table: a seeded subset of each split
MAPS_SIZE = 224  # the photos' maps are drawn at this resolution, the ViT's position grid resampled
SCENE_SIZE = 128  # the scenes are drawn at this resolution (the ViT sees them at its own)
SCENES = 500  # held-out scenes of each kind the maps are scored on


@dataclass(frozen=True)
class Spec:
    """One file of the gallery: what it shows, and the ``lejepa-viz`` arguments that make it
    (``{name}`` fields filled by :func:`fill`). ``iou`` names the map kinds whose scene IoU
    says the picture shows what it is named for (else the command's own record says it)."""

    name: str
    what: str
    argv: tuple[str, ...]
    iou: tuple[str, ...] = ()


def args(text: str) -> tuple[str, ...]:
    """A command line's words (no word holds a space)."""
    return tuple(text.split())


VIT_224 = ("--weights", "{vit}", "--model-size", str(MAPS_SIZE))
SPECS = (
    Spec(
        "convergence.gif",
        "the CNN's projector outputs during training: (a) the recorded clean test images and "
        "(b) the training views SIGReg acts on, on a random plane over the 1σ / 2σ circles of "
        "N(0, I); (c) the SIGReg of both against the band of a true N(0, I) sample; (d) three "
        "1-D slices against N(0, 1); (e) their ECF gap; (f) the prediction loss",
        ("animate", "--snapshots", "{snapshots}", "--out", "{out}/convergence.gif"),
    ),
    Spec(
        "flow.gif",
        "points on a ring in 2-D moved by plain gradient descent on SIGReg alone, until the "
        "cloud scores what a true N(0, I) sample of its size scores. A faint hole may be left "
        "at the centre: it moves the characteristic function for t in [−3, 3] by less than a true "
        "Gaussian sample's own noise, so no test of that size can see it (`--past-null` runs on "
        "into the statistic falling below every Gaussian sample: the points then fit the 17 "
        "knots, not N(0, I))",
        ("flow", "--shape", "ring", "--steps", "{flow_steps}", "--out", "{out}/flow.gif"),
    ),
    Spec(
        "lambda.gif",
        "a tiny MLP encoder trained with the LeJEPA loss on two noisy views of a heavy-tailed "
        "2-D cloud: λ = 0 (pure invariance: it collapses) beside λ = 0.5 (with SIGReg: N(0, I)), "
        "on an orthonormal plane, where a true N(0, I) sample fills the circles",
        args("lambda --lambdas 0 0.5 --steps {lambda_steps} --out {out}/lambda.gif"),
    ),
    Spec(
        "maps.png",
        "held-out scenes of the world (items and textures the ViT never trained on) with their "
        "true masks, beside the ViT's maps and the same ViT's at random initialisation: PCA of "
        "the patch features fitted on all scenes and per scene, and the [CLS] attention masks "
        f"({KEEP:.0%} of the mass)",
        args(
            f"maps --weights {{vit}} --scenes 8 --size {SCENE_SIZE} --score {{scenes}} "
            "--label LeJEPA --out {out}/maps.png"
        ),
        tuple(MAP_KINDS),
    ),
    Spec(
        "video.gif",
        "an object of the held-out world crossing a held-out background, beside the ViT's "
        "[CLS] attention mask (mean over heads; the paper's Fig. 13)",
        args(
            f"video --weights {{vit}} --crossing 0 --size {MAPS_SIZE} "
            "--num-frames {video_frames} --out {out}/video.gif"
        ),
        ("attention",),
    ),
    Spec(
        "evolution.gif",
        "the maps of held-out scenes emerging over the ViT's training, at the backbones the run "
        "kept (`--keep-backbones`: steps 0, 8, 16, 32, … and the end), under them each "
        "checkpoint's IoU on the held-out scenes, a curve",
        args(
            f"evolve --weights {{kept}} --labels {{labels}} --scenes 6 --size {SCENE_SIZE} "
            "--score {scenes} --out {out}/evolution.gif"
        ),
    ),
    Spec(
        "maps-photos.png",
        "the same maps of the bundled photos, drawn at 224 px: out of distribution (the ViT "
        "never saw a photo), with no masks to score",
        ("maps", *VIT_224, "--label", "LeJEPA", "--out", "{out}/maps-photos.png"),
    ),
    Spec(
        "pca/",
        "each bundled photo beside the RGB map of the first three PCA components of its own "
        "patch features (the paper's Fig. 14 recipe); out of distribution, no masks to score",
        ("pca", "--fit", "per-image", *VIT_224, "--out", "{out}/pca"),
    ),
    Spec(
        "video-photo.gif",
        "a camera path panning and zooming over a bundled photo, beside the ViT's [CLS] "
        "attention mask; out of distribution, no masks to score",
        (
            "video",
            *VIT_224,
            "--num-frames",
            "{video_frames}",
            "--out",
            "{out}/video-photo.gif",
        ),
    ),
)


def fill(argv: tuple[str, ...], values: dict) -> list[str]:
    """``argv`` with its ``{name}`` fields filled from ``values``; a field that stands alone and
    holds a list becomes that many arguments.

    Example:
        >>> fill(("evolve", "--weights", "{kept}", "--out", "{out}/e.gif"), {"kept": ["a", "b"], "out": "eval"})
        ['evolve', '--weights', 'a', 'b', '--out', 'eval/e.gif']
    """
    out = []
    for arg in argv:
        value = values.get(arg[1:-1]) if arg.startswith("{") and arg.endswith("}") else None
        out += list(map(str, value)) if isinstance(value, list) else [arg.format(**values)]
    return out


def add_gallery(sub) -> None:
    """The ``lejepa-viz gallery`` command."""
    p = sub.add_parser("gallery", help="train or reuse small models, then draw every picture")
    p.add_argument("--out", default="eval", help="gallery folder")
    p.add_argument("--runs", default="runs/gallery", help="where the gallery's models train")
    p.add_argument("--minutes", type=float, default=3.0, help="training budget of each model")
    p.add_argument(
        "--reuse",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reuse finished runs in --runs (default) instead of training again",
    )
    p.set_defaults(run=lambda args: make_gallery(args.out, args.runs, args.minutes, args.reuse))


def make_gallery(
    out: str | os.PathLike = "eval",
    runs: str | os.PathLike = "runs/gallery",
    minutes: float = 3.0,
    reuse: bool = True,
    *,
    steps: int | None = None,
    cnn: TrainConfig = CNN,
    vit: TrainConfig = SCENE_VIT,
    scenes: int = SCENES,
    flow_steps: int = 300,
    lambda_steps: int = 200,
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
        scenes: held-out scenes of each kind the maps are scored on.
        flow_steps, lambda_steps: steps (at most) of the gradient flow and of the λ runs.
        video_frames: frames of the camera-path video.
        eval_subset: training and test images of the CNN's results table (None: a whole split).
        progress: progress bars while training.

    Returns:
        The path of ``out/README.md``.
    """
    out, runs = Path(out), Path(runs)
    budget = dict(max_minutes=None if steps else minutes, steps=steps, progress=progress)
    configs = [
        replace(cnn, out=str(runs / cnn.dataset), **budget),
        replace(vit, out=str(runs / f"{vit.dataset}-vit"), **budget),
    ]
    models = [train(cfg, reuse) for cfg in configs]
    cnn_run, vit_run = (Run(cfg.out) for cfg in configs)
    kept = sorted(vit_run.path("backbones").glob("step*"))
    values = dict(
        out=out,
        snapshots=cnn_run.path(Run.SNAPSHOTS),
        vit=vit_run.path(Run.CHECKPOINT),
        kept=kept,
        labels=[
            f"step {int(p.name[4:])}" + " (random init)" * (p.name == "step000000") for p in kept
        ],
        flow_steps=flow_steps,
        lambda_steps=lambda_steps,
        video_frames=video_frames,
        scenes=scenes,
    )
    specs = [s for s in SPECS if kept or s.name != "evolution.gif"]
    rows = [(spec, fill(spec.argv, values)) for spec in specs]
    rows = [(spec, argv, *timed(argv)) for spec, argv in rows]
    iou = next(drawn.numbers["iou"] for spec, _, drawn, _ in rows if spec.name == "maps.png")
    evaluation = evaluation_argv(cnn_run, eval_subset)
    table = cli.run(evaluation)
    readme = render_readme(rows, models, iou, (evaluation, table), configs[0].lam)
    with atomic_path(out / "README.md") as tmp:
        tmp.write_text(readme + by_hand(out / "README.md"))
    print(f"gallery in {out}/ (README.md lists each file)")
    return out / "README.md"


def train(cfg: TrainConfig, reuse: bool) -> tuple[list[str], dict]:
    """Train ``cfg`` (or reuse its finished run) through the command line: ``(argv, result)``."""
    argv = ["train", *cli.config_argv(cfg)]
    argv += (["--reuse"] if reuse else []) + ([] if cfg.progress else ["--no-progress"])
    return argv, cli.run(argv)


def timed(argv: list[str]) -> tuple[object, float]:
    """What ``lejepa-viz argv`` made, and the seconds it took."""
    start = time.perf_counter()
    made = cli.run(argv)
    return made, time.perf_counter() - start


def evaluation_argv(run: Run, subset: tuple[int | None, int | None]) -> list[str]:
    """``lejepa-viz eval`` of the CNN on seeded subsets, three few-shot draws, reused."""
    argv = ["eval", "--checkpoint", str(run.path(Run.CHECKPOINT)), "--draws", "3", "--reuse"]
    for option, n in zip(("--num-train", "--num-test"), subset, strict=True):
        argv += [option, str(n)] if n is not None else []
    return argv


BY_HAND = "<!-- Written by hand below this line: the gallery keeps it when it runs again. -->"


def by_hand(readme: Path) -> str:
    """The hand-written tail of an existing gallery README (from :data:`BY_HAND` on; write-ups
    of experiments that no single command reruns), or ``""``."""
    text = readme.read_text() if readme.is_file() else ""
    return "\n" + text[text.index(BY_HAND) :] if BY_HAND in text else ""


def command(argv) -> str:
    return "lejepa-viz " + shlex.join(map(str, argv))


def render_readme(rows, models, iou: dict, evaluation, lam: float) -> str:
    """The gallery's README.md: what each file shows, the number that says it shows it, the
    command that made it, the models, the CNN's results table and the maps' IoU table."""
    lines = [
        "# Gallery",
        "",
        "Made by `lejepa-viz gallery` (the README's main job); every file is regenerated by it.",
        "",
        "| file | what it shows | the number that says it shows it | command | seconds |",
        "|------|---------------|----------------------------------|---------|--------:|",
    ]
    for spec, argv, drawn, seconds in rows:
        number = iou_sentence(iou["world"], spec.iou) if spec.iou else drawn.summary
        cell = f"`{command(argv)}`"
        lines.append(
            f"| [`{spec.name}`]({spec.name}) | {spec.what} | {number} | {cell} | {seconds:.0f} |"
        )
    lines += ["", "## Models", ""]
    for label, (argv, result) in zip(("CNN", "ViT"), models, strict=True):
        done = f"{result.get('step')} steps in {result.get('elapsed_s', 0) / 60:.1f} min"
        line = f"- {label} ({done}): `{command(argv)}`"
        if result.get("linear_probe") is not None:
            line += (
                f"; frozen linear probe on the test split: **{100 * result['linear_probe']:.2f}%**"
            )
        lines.append(line + ".")
    argv, table = evaluation
    lines += [
        "",
        "## The convergence run",
        "",
        f"The CNN trains with λ = {lam:g}, above the default, chosen for the picture: it is named "
        "for convergence to N(0, I) (the top-level README says what the default λ's last frame "
        "reads after the same budget). The recorder keeps as many clean test images as one "
        "training view holds, normalised with their own batch statistics (BatchNorm's running "
        "averages mix global and local views; every epoch ends by re-estimating them on clean "
        "training images), and each set is read against the null band of its own size: "
        "SIGReg's excess over the null grows in proportion to the number of points.",
        "",
        "## The CNN beside its baselines",
        "",
        f"Frozen features; few-shot: mean ± std over the draws (`{command(argv)}`).",
        "",
        table["table"].rstrip(),
        "",
        "## How good are the maps?",
        "",
        "Mean IoU of each map with the true object masks, with its 95 % bootstrap interval over "
        "scenes. PCA maps: the first component, its sign set so that the centre is positive (an "
        "assumption: objects sit inside the frame; no mask used), thresholded at 0; in brackets "
        "the better of the two signs, which reads the masks. Attention: the patches holding "
        f"{KEEP:.0%} of the [CLS] attention (no sign to choose).",
        "",
    ]
    for kind, scores in iou.items():
        lines += [
            f"### {scores['num_scenes']} {HELD_OUT[kind]}",
            "",
            *iou_table(scores),
            "",
            verdict(scores),
            "",
        ]
    return "\n".join(lines)
