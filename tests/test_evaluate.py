import json

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

import lejepa_viz.evaluate.probes as ev
from lejepa_viz.evaluate import (
    evaluate_features,
    extract_features,
    few_shot,
    few_shot_indices,
    knn,
    linear_probe,
    results_table,
)
from lejepa_viz.train import TrainConfig


def blobs(n_per_class, spread, seed, classes=3, dim=16):
    """Gaussian blobs around fixed class centres ~10 apart, features (N, dim); seed draws samples."""
    centres = np.random.default_rng(100).standard_normal((classes, dim)) * 10 / np.sqrt(2)
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(classes), n_per_class)
    x = centres[y] + spread * rng.standard_normal((len(y), dim))
    order = rng.permutation(len(y))
    return x[order].astype(np.float32), y[order]


@pytest.fixture(scope="module")
def separable():
    (train_x, train_y), (test_x, test_y) = blobs(50, 1.0, seed=0), blobs(30, 1.0, seed=1)
    return train_x, train_y, test_x, test_y


@pytest.fixture(scope="module")
def overlapping():
    """Noisy enough blobs that both classifiers make errors."""
    x, y = blobs(200, 9.0, seed=2)
    return x[:300], y[:300], x[300:], y[300:]


def plain_cosine_knn(train_x, train_y, test_x, k):
    """The k nearest training examples by cosine similarity, majority vote, ties to lowest label."""
    a = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    b = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
    nearest = np.argsort(-(b @ a.T), axis=1)[:, :k]  # (M, k)
    votes = [np.bincount(train_y[row], minlength=train_y.max() + 1) for row in nearest]
    return np.array([np.argmax(v) for v in votes])


def test_separable_blobs_are_classified_perfectly(separable):
    assert linear_probe(*separable) == 1.0
    assert knn(*separable, k=5) == 1.0
    assert few_shot(*separable, shots=(1, "all"), draws=3) == {"1": (1.0, 0.0), "all": (1.0, 0.0)}


def test_noise_features_give_chance_accuracy():
    rng = np.random.default_rng(0)
    train_x, test_x = rng.standard_normal((600, 8)), rng.standard_normal((3000, 8))
    train_y, test_y = rng.integers(0, 3, 600), rng.integers(0, 3, 3000)
    assert abs(linear_probe(train_x, train_y, test_x, test_y) - 1 / 3) < 0.05
    assert abs(knn(train_x, train_y, test_x, test_y) - 1 / 3) < 0.05


def test_linear_probe_matches_direct_sklearn_fit(overlapping):
    train_x, train_y, test_x, test_y = overlapping
    scaler = StandardScaler().fit(train_x)
    clf = LogisticRegression(C=0.3, max_iter=1000).fit(scaler.transform(train_x), train_y)
    expected = np.mean(clf.predict(scaler.transform(test_x)) == test_y)
    assert 0.5 < expected < 1.0  # a case with errors, so agreement means something
    assert linear_probe(*overlapping, C=0.3) == expected


@pytest.mark.parametrize("k", [1, 4, 20])
def test_knn_matches_plain_cosine_vote(overlapping, k):
    train_x, train_y, test_x, test_y = overlapping
    expected = np.mean(plain_cosine_knn(train_x, train_y, test_x, k) == test_y)
    assert 0.4 < expected < 1.0
    assert knn(*overlapping, k=k, standardize=False) == expected
    mu, sd = train_x.mean(0), train_x.std(0)  # standardised: the same vote on z-scores
    z_train, z_test = (train_x - mu) / sd, (test_x - mu) / sd
    expected = np.mean(plain_cosine_knn(z_train, train_y, z_test, k) == test_y)
    assert knn(*overlapping, k=k) == expected


def test_standardized_knn_ignores_per_feature_scale_and_shift(overlapping):
    train_x, train_y, test_x, test_y = overlapping
    scale, shift = np.geomspace(1e-2, 1e3, 16), np.linspace(-50.0, 50.0, 16)  # 16 features
    moved = (train_x * scale + shift, train_y, test_x * scale + shift, test_y)
    assert knn(*moved, k=7) == knn(*overlapping, k=7)
    assert knn(*moved, k=7, standardize=False) != knn(*overlapping, k=7, standardize=False)


def test_few_shot_indices_are_stratified_and_seeded():
    y = np.array([0] * 7 + [1] * 5 + [2] * 9)
    idx = few_shot_indices(y, 3, seed=(0, 3, 0))
    assert len(np.unique(idx)) == 9
    np.testing.assert_array_equal(np.bincount(y[idx]), [3, 3, 3])
    np.testing.assert_array_equal(idx, few_shot_indices(y, 3, seed=(0, 3, 0)))
    assert any(not np.array_equal(idx, few_shot_indices(y, 3, seed=(0, 3, d))) for d in range(1, 5))


def test_few_shot_trains_on_stratified_draws_then_on_everything(monkeypatch, overlapping):
    calls = []

    def fake_probe(train_x, train_y, test_x, test_y, **kwargs):
        calls.append((train_x.copy(), np.bincount(train_y), len(test_y)))
        return len(calls) / 10

    monkeypatch.setattr(ev, "linear_probe", fake_probe)
    out = few_shot(*overlapping, shots=(2, "all"), draws=3, seed=7)
    assert [c[1].tolist() for c in calls[:3]] == [[2, 2, 2]] * 3
    assert len({c[0].tobytes() for c in calls[:3]}) == 3  # three different draws
    assert len(calls[3][0]) == 300 and all(c[2] == 300 for c in calls)
    assert out["2"] == pytest.approx((0.2, np.std([0.1, 0.2, 0.3])))
    assert out["all"] == (0.4, 0.0)


def test_few_shot_is_deterministic_for_a_seed(overlapping):
    first = few_shot(*overlapping, shots=(1, 5, "all"), draws=4, seed=3)
    assert first == few_shot(*overlapping, shots=(1, 5, "all"), draws=4, seed=3)
    assert first["all"][1] == 0.0 and first["1"][1] > 0.0
    assert first["all"][0] == linear_probe(*overlapping)


def test_evaluate_features_reuses_the_full_probe(monkeypatch, overlapping):
    real, full_fits = ev.linear_probe, []

    def counting_probe(train_x, *args, **kwargs):
        full_fits.append(len(train_x) == 300)
        return real(train_x, *args, **kwargs)

    monkeypatch.setattr(ev, "linear_probe", counting_probe)
    r = evaluate_features(*overlapping, shots=(1, "all"), draws=2, k=10)
    assert full_fits.count(True) == 1
    assert r["few_shot"]["all"] == [r["linear_probe"], 0.0]
    assert r["knn"] == knn(*overlapping, k=10) and r["k"] == 10
    assert (r["num_train"], r["num_test"], r["dim"], r["num_classes"]) == (300, 300, 16, 3)
    assert json.loads(json.dumps(r)) == r


def test_results_table_layout():
    def row(model, knn_acc, fs):
        res = {"knn": knn_acc, "k": 20, "few_shot": fs}
        return dict(model=model, params="0.37M", pretrain="none", epochs=5, results=res)

    rows = [
        row("LeJEPA ViT-T", 0.83, {"1": [0.5, 0.0052], "10": [0.8431, 0.0052], "all": [0.9, 0]}),
        row("random ViT-T", 0.5, {"1": [0.2, 0.01], "all": [0.61234, 0.0]}),
    ]
    lines = results_table(rows, "fashion-mnist").splitlines()
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0] == ["shots", "model", "params", "pretrain", "epochs", "fashion-mnist"] + [
        "k-NN (k=20)"
    ]
    assert set(lines[1]) == {"|", "-"} and len({len(line) for line in lines}) == 1
    assert [(c[0], c[1]) for c in cells[2:]] == [
        ("1", "LeJEPA ViT-T"),
        ("1", "random ViT-T"),
        ("10", "LeJEPA ViT-T"),
        ("all", "LeJEPA ViT-T"),
        ("all", "random ViT-T"),
    ]
    assert cells[4][2:] == ["0.37M", "none", "5", "84.31 ± 0.52", "—"]
    assert cells[6][5:] == ["61.23", "50.00"]


def test_extract_features_matches_direct_mean_pooling():
    images = torch.randint(0, 256, (7, 3, 5, 4), dtype=torch.uint8)
    layer = torch.nn.Linear(3, 2)  # has parameters that require grad

    def fn(x):
        assert not torch.is_grad_enabled() and x.dtype == torch.float32
        return layer(x.mean((2, 3)))

    feats = extract_features(fn, images, batch_size=3, progress=False)
    with torch.no_grad():
        expected = layer(images.float().div(255).mean((2, 3))).numpy()
    assert feats.dtype == np.float32 and feats.shape == (7, 2)
    np.testing.assert_allclose(feats, expected, rtol=1e-6, atol=1e-6)


def _bad(train_x, train_y, test_x, test_y, *, where, value):
    arrays = dict(train_x=train_x.copy(), train_y=train_y, test_x=test_x.copy(), test_y=test_y)
    if value == "nan":
        arrays[where][0, 0] = np.nan
    elif value == "inf":
        arrays[where][-1, -1] = np.inf
    elif value == "drop":
        arrays[where] = arrays[where][1:]
    elif value == "empty":
        arrays[where] = arrays[where][:0]
    elif value == "narrow":
        arrays[where] = arrays[where][:, 1:]
    elif value == "one class":
        arrays[where] = np.zeros_like(arrays[where])
    return arrays


@pytest.mark.parametrize("func", [linear_probe, knn, few_shot, evaluate_features])
@pytest.mark.parametrize(
    "where,value",
    [
        ("train_y", "drop"),
        ("test_y", "drop"),
        ("train_x", "empty"),
        ("test_x", "empty"),
        ("train_x", "nan"),
        ("test_x", "inf"),
        ("test_x", "narrow"),
        ("train_y", "one class"),
    ],
)
def test_bad_arrays_are_refused(func, where, value, separable):
    with pytest.raises(ValueError, match=where):
        func(**_bad(*separable, where=where, value=value))


@pytest.mark.parametrize("func", [knn, evaluate_features])
@pytest.mark.parametrize("k", [0, -3, 151])
def test_bad_k_is_refused(func, k, separable):
    with pytest.raises(ValueError, match="k must"):
        func(*separable, k=k)


@pytest.mark.parametrize("func", [few_shot, evaluate_features])
@pytest.mark.parametrize("shots", [(51,), ("some",), (0,), (1.5,), (True,), (1, 1), (), "all"])
def test_bad_shots_are_refused(func, shots, separable):
    with pytest.raises(ValueError, match="shots"):
        func(*separable, shots=shots)


def test_other_bad_arguments_are_refused(separable):
    with pytest.raises(ValueError, match="draws"):
        few_shot(*separable, draws=0)
    with pytest.raises(ValueError, match="shots"):
        few_shot_indices(separable[1], 51, seed=0)
    with pytest.raises(ValueError, match="C "):
        linear_probe(*separable, C=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        linear_probe(*separable, max_iter=0)
    with pytest.raises(ValueError, match="rows"):
        results_table([{"model": "x"}], "fashion-mnist")
    images = torch.zeros(4, 1, 2, 2, dtype=torch.uint8)
    with pytest.raises(ValueError, match="images"):
        extract_features(lambda x: x.flatten(1), images.float(), progress=False)
    with pytest.raises(ValueError, match="images"):
        extract_features(lambda x: x.flatten(1), images[:0], progress=False)
    with pytest.raises(ValueError, match="batch_size"):
        extract_features(lambda x: x.flatten(1), images, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="fn"):
        extract_features(lambda x: x, images, progress=False)


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    from conftest import tiny_config
    from lejepa_viz.train import train

    out = tmp_path_factory.mktemp("run")
    train(tiny_config(out, steps=4))
    return out


def test_evaluate_run_is_reused_only_for_the_same_run_step_and_settings(digits_run):
    from lejepa_viz.evaluate import evaluate_run
    from lejepa_viz.runs import Run
    from lejepa_viz.train import train

    kw = dict(num_train=400, num_test=200, shots=(1, "all"), device="cpu", progress=False)
    first = evaluate_run(digits_run, draws=1, **kw)
    assert not first["cached"] and first["path"].endswith("eval_400_200.json")
    assert [r["model"].split()[0] for r in first["rows"]] == ["LeJEPA", "random", "raw"]
    again = evaluate_run(digits_run / "checkpoint.pt", draws=1, **kw)  # the file, or its folder
    assert again["cached"] and again["rows"] == first["rows"]
    assert not evaluate_run(digits_run, draws=2, **kw)["cached"]  # other settings
    saved = json.loads(Run(digits_run).path(Run.CONFIG).read_text())
    train(
        TrainConfig(
            **{**{k: v for k, v in saved.items() if k != "run_id"}, "steps": 5, "resume": True}
        )
    )  # the same run, one step further: evaluated again
    assert not evaluate_run(digits_run, draws=2, **kw)["cached"]


def test_run_features_are_the_subset_the_seed_draws(digits_run):
    from lejepa_viz.data import load_dataset
    from lejepa_viz.evaluate import frozen_probe, run_features

    train_x, train_y, test_x, test_y = run_features(
        digits_run, model="pixels", num_train=300, num_test=100, seed=3
    )
    data = load_dataset("digits", "train")
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(3))[:300]
    np.testing.assert_array_equal(train_x, data.images[pick].flatten(1).float().numpy() / 255)
    np.testing.assert_array_equal(train_y, data.labels[pick].numpy())
    assert test_x.shape == (100, 256) and len(test_y) == 100
    probe = frozen_probe(digits_run, model="pixels", num_train=300, num_test=100, seed=3)
    assert probe == linear_probe(train_x, train_y, test_x, test_y, max_iter=300, quiet=True)
    trained = run_features(digits_run, model="trained", num_train=50, num_test=20)[0]
    random = run_features(digits_run, model="random", num_train=50, num_test=20)[0]
    assert trained.shape == random.shape and not np.allclose(trained, random)
    with pytest.raises(ValueError, match="model must be one of"):
        run_features(digits_run, model="imagenet")


def test_run_features_read_the_layer_asked_for(digits_run):
    from lejepa_viz.backbones import load_encoder
    from lejepa_viz.data import load_dataset
    from lejepa_viz.evaluate import run_features

    encoder = load_encoder(digits_run / "checkpoint.pt").eval()
    data = load_dataset("digits", "train")
    pick = torch.randperm(len(data), generator=torch.Generator().manual_seed(0))[:30]
    images = data.images[pick].float() / 255
    with torch.no_grad():
        emb, z = encoder(images)  # the forward pass by hand
    for layer, expected in (("embedding", emb), ("projector", z)):
        x = run_features(digits_run, num_train=30, num_test=10, layer=layer, device="cpu")[0]
        np.testing.assert_allclose(x, expected.numpy(), rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="layer must be one of"):
        run_features(digits_run, num_train=30, num_test=10, layer="logits")


def test_run_features_read_the_backbones_a_run_kept(tmp_path):
    from conftest import tiny_config
    from lejepa_viz.backbones import load_encoder
    from lejepa_viz.evaluate import run_features
    from lejepa_viz.model import Encoder
    from lejepa_viz.train import train

    cfg = tiny_config(tmp_path, steps=9, keep_backbones=True)  # keeps steps 0, 8 and 9
    train(cfg)
    trained = load_encoder(tmp_path / "checkpoint.pt")
    torch.manual_seed(cfg.seed)  # the weights the run started from, rebuilt from its seed
    start = Encoder.build(**trained.config).eval()
    kw = dict(num_train=40, num_test=20, layer="embedding", device="cpu")
    pixels = torch.from_numpy(run_features(tmp_path, model="pixels", **kw)[0])
    side = int(np.sqrt(pixels.shape[1]))
    images = pixels.reshape(-1, 1, side, side)

    def embedding(encoder):  # kept backbones are float16: the weights rounded, by hand
        with torch.no_grad():
            for t in encoder.backbone.state_dict().values():
                t.copy_(t.half().to(t.dtype)) if t.is_floating_point() else None
            return encoder(images)[0].numpy()

    for step, encoder in ((9, trained), (0, start)):
        got = run_features(tmp_path, step=step, **kw)[0]
        np.testing.assert_allclose(got, embedding(encoder), rtol=1e-5, atol=1e-6)
    with pytest.raises(FileNotFoundError, match=r"no backbone kept at step 4 .*\[0, 8, 9\]"):
        run_features(tmp_path, step=4, **kw)
    with pytest.raises(ValueError, match="no projector"):
        run_features(tmp_path, step=8, **{**kw, "layer": "projector"})


def test_effective_rank_against_closed_forms():
    from lejepa_viz.evaluate import effective_rank

    g = np.random.default_rng(0)
    scales = np.array([3.0, 2.0, 1.0, 0.5])
    x = g.standard_normal((200_000, 4)) * scales
    rank, spectrum = effective_rank(x)
    p = scales**2 / (scales**2).sum()  # the population spectrum, normalised
    assert rank == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-2)
    np.testing.assert_allclose(spectrum, scales**2, rtol=2e-2)
    collapsed = np.outer(g.standard_normal(100), [1.0, 2.0, -1.0])  # one direction
    assert effective_rank(collapsed)[0] == pytest.approx(1.0, abs=1e-6)
    assert effective_rank(g.standard_normal((50_000, 8)))[0] == pytest.approx(8, rel=1e-2)
    with pytest.raises(ValueError, match="N >= 2"):
        effective_rank(np.zeros((1, 3)))
