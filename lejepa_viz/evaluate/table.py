"""The results table of the LeJEPA README: shots × models, linear probe and k-NN, as Markdown."""

from __future__ import annotations


def results_table(rows: list[dict], dataset: str) -> str:
    """Markdown table of several models' results, laid out like the LeJEPA README's table.

    One line per (shots, model), ordered by shots (numbers, then ``"all"``) and then by the
    order of ``rows``; a model missing a shot count has no line for it. Cells are percentages
    with two decimals, ``mean ± std`` over draws (no ``±`` for ``"all"``). k-NN uses the
    whole training set, so its cell is filled on the ``"all"`` lines and ``—`` elsewhere.

    Args:
        rows: dicts with ``model``, ``params`` (e.g. ``"0.37M"``), ``pretrain`` (e.g.
            ``"LeJEPA, fashion-mnist"`` or ``"none"``), ``epochs`` and ``results`` (from
            :func:`evaluate_features`).
        dataset: the column title for the accuracies.

    Returns:
        The table, one line per row, with a trailing newline.

    Example:
        >>> res = {"knn": 0.8, "k": 20, "few_shot": {"1": [0.5, 0.01], "all": [0.9, 0.0]}}
        >>> row = dict(model="ViT-T", params="5.5M", pretrain="none", epochs=0, results=res)
        >>> print(results_table([row], "fmnist"), end="")
        | shots | model | params | pretrain | epochs | fmnist       | k-NN (k=20) |
        |-------|-------|--------|----------|--------|--------------|-------------|
        | 1     | ViT-T | 5.5M   | none     | 0      | 50.00 ± 1.00 | —           |
        | all   | ViT-T | 5.5M   | none     | 0      | 90.00        | 80.00       |
    """
    keys = ("model", "params", "pretrain", "epochs", "results")
    if not rows or any(not isinstance(r, dict) or not set(keys) <= r.keys() for r in rows):
        raise ValueError(f"rows must be a non-empty list of dicts with keys {keys}")
    ks = {r["results"]["k"] for r in rows}
    header = ["shots", "model", "params", "pretrain", "epochs", dataset]
    header.append(f"k-NN (k={ks.pop()})" if len(ks) == 1 else "k-NN")
    all_shots = {s for r in rows for s in r["results"]["few_shot"]}
    order = sorted(all_shots, key=lambda s: (s == "all", int(s) if s != "all" else 0))
    lines = []
    for s in order:
        for r in rows:
            if s not in r["results"]["few_shot"]:
                continue
            mean, std = r["results"]["few_shot"][s]
            acc = f"{100 * mean:.2f}" if s == "all" else f"{100 * mean:.2f} ± {100 * std:.2f}"
            nn = f"{100 * r['results']['knn']:.2f}" if s == "all" else "—"
            lines.append([s, r["model"], r["params"], r["pretrain"], r["epochs"], acc, nn])
    table = [header, *[[str(c) for c in line] for line in lines]]
    widths = [max(len(line[j]) for line in table) for j in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(table[0]), rule, *map(fmt, table[1:])]) + "\n"
