"""The plots of a run, each written to a PNG: curves, confusion heat map, misclassified
digits, first-layer filters, feature maps, linear-layer weights; and the curves of several
runs overlaid (``compared_curves``, for the comparison page).

matplotlib is imported lazily (the ``viz`` extra) with the non-interactive Agg backend;
without it every function raises ImportError naming ``pip install 'fastcnn[viz]'``.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..backend import as_numpy

MISSING = "plots need matplotlib, which is not installed: pip install 'fastcnn[viz]'"


def require_matplotlib():
    """The pyplot module (Agg backend), or ImportError saying what to install."""
    try:
        import matplotlib
    except ImportError as e:
        raise ImportError(MISSING) from e
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(fig, path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    require_matplotlib().close(fig)
    return path


def training_curves(history: list, path) -> Path:
    """Loss, accuracies (train, test, validation) and learning rate against steps (top row)
    and seconds of training (bottom row). ``history``: the rows of history.json."""
    plt = require_matplotlib()
    if not history:
        raise ValueError("the run has no history to plot (history.json is empty)")
    col = lambda k: np.array([r.get(k, np.nan) if r.get(k) is not None else np.nan for r in history], float)  # noqa: E731
    fig, axes = plt.subplots(2, 3, figsize=(13, 6.5))
    for row, (xk, xl) in enumerate((("step", "step"), ("train_seconds", "seconds of training"))):
        x = col(xk)
        ax = axes[row, 0]
        ax.plot(x, col("loss"), "o-", ms=3, label="train loss")
        ax.plot(x, col("test_loss"), "s-", ms=3, label="test loss")
        ax.set_ylabel("loss")
        ax = axes[row, 1]
        for k, lab, m in (("train_accuracy", "train", "o-"), ("test_accuracy", "test", "s-"),
                          ("val_accuracy", "validation", "^-")):
            y = col(k)
            if np.isfinite(y).any():
                ax.plot(x, y, m, ms=3, label=lab)
        ax.set_ylabel("accuracy")
        ax = axes[row, 2]
        ax.plot(x, col("lr"), "o-", ms=3, color="tab:purple", label="learning rate")
        ax.set_ylabel("learning rate")
        ax.ticklabel_format(axis="y", useOffset=False, style="sci", scilimits=(-3, 3))
        if np.nanmin(col("lr")) > 0 and np.nanmax(col("lr")) / np.nanmin(col("lr")) > 20:
            ax.set_yscale("log")
        for ax in axes[row]:
            ax.set_xlabel(xl)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    fig.suptitle("training curves")
    fig.tight_layout()
    return _save(fig, path)


def compared_curves(histories: dict, path, levels=(0.97, 0.99)) -> Path:
    """Several runs' curves overlaid, one colour per run: test (else validation) accuracy against
    seconds of training and against epochs, with the ``levels`` as dashed lines, and the test
    loss against seconds. ``histories``: label -> the rows of that run's history.json."""
    plt = require_matplotlib()
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.6))
    col = lambda h, k: np.array([r.get(k) if r.get(k) is not None else np.nan for r in h], float)  # noqa: E731
    for label, h in histories.items():
        if not h:
            continue
        acc = col(h, "test_accuracy")
        line, = axes[0].plot(col(h, "train_seconds"), acc, "o-", ms=3, label=label)
        axes[1].plot(col(h, "epoch"), acc, "o-", ms=3, color=line.get_color(), label=label)
        axes[2].plot(col(h, "train_seconds"), col(h, "test_loss"), "o-", ms=3, color=line.get_color(), label=label)
    for ax in axes[:2]:
        for lv in levels:
            ax.axhline(lv, ls="--", lw=0.8, color="grey")
        ax.set_ylabel("test accuracy")
        lo = min((float(np.nanmin(col(h, "test_accuracy"))) for h in histories.values() if h), default=0.9)
        ax.set_ylim(max(0.0, min(lo, 0.96) - 0.01), 1.0)
    axes[0].set_xlabel("seconds of training")
    axes[1].set_xlabel("epoch")
    axes[2].set_xlabel("seconds of training")
    axes[2].set_ylabel("test loss")
    for ax in axes:
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.suptitle("the runs compared (dashed: " + ", ".join(f"{lv:.0%}" for lv in levels) + ")")
    fig.tight_layout()
    return _save(fig, path)


def confusion_heatmap(cm, path, classes=None, title="confusion matrix (test set)") -> Path:
    """The confusion matrix as a heat map with the counts written in the cells."""
    plt = require_matplotlib()
    cm = np.asarray(cm)
    if classes is not None:
        cm = cm[np.ix_(classes, classes)]
    labels = list(classes) if classes is not None else list(range(cm.shape[0]))
    k = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * k, 0.8 + 0.55 * k))
    # log-ish colour so the off-diagonal errors show beside the large diagonal
    im = ax.imshow(np.log1p(cm), cmap="Blues")
    top = np.log1p(cm.max(initial=1))
    for i in range(k):
        for j in range(k):
            v = int(cm[i, j])
            ax.text(j, i, str(v), ha="center", va="center", fontsize=7 if v >= 1000 else 8,
                    color="white" if np.log1p(v) > 0.6 * top else ("black" if v else "#bbbbbb"))
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    cb = fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    cb.set_label("log(1 + count)")
    fig.tight_layout()
    return _save(fig, path)


def image_grid(images, titles, path, ncols=9, suptitle=None, cmap="gray_r", cell=(1.35, 1.55),
               title_size=8, suptitle_size=None, **imshow) -> Path:
    """Small images in a grid, each with a title (e.g. 'true 7 → 2 (0.91)'); ``cell`` is the
    inches per image (width, height), ``imshow`` extra arguments such as vmin/vmax."""
    plt = require_matplotlib()
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = max(1, math.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(cell[0] * ncols, cell[1] * nrows + (0.4 if suptitle else 0)),
                             squeeze=False)
    for i, ax in enumerate(axes.flat):
        ax.axis("off")
        if i < n:
            ax.imshow(np.asarray(images[i]), cmap=cmap, interpolation="nearest", **imshow)
            ax.set_title(titles[i], fontsize=title_size)
    if suptitle:
        fig.suptitle(suptitle, fontsize=suptitle_size)
    fig.tight_layout()
    return _save(fig, path)


def misclassified_grid(x, y_true, y_pred, confidence, path, max_images=36, ncols=9) -> Path:
    """The misclassified images (most confident mistakes first): true → predicted (confidence)."""
    y_true, y_pred, confidence = (np.asarray(as_numpy(a)) for a in (y_true, y_pred, confidence))
    wrong = np.flatnonzero(y_true != y_pred)
    wrong = wrong[np.argsort(-confidence[wrong], kind="stable")][:max_images]
    if len(wrong) == 0:
        plt = require_matplotlib()
        fig, ax = plt.subplots(figsize=(4, 1))
        ax.axis("off")
        ax.text(0.5, 0.5, "no misclassified images", ha="center", va="center")
        return _save(fig, path)
    titles = [f"{y_true[i]} → {y_pred[i]} ({confidence[i]:.2f})" for i in wrong]
    return image_grid([x[i] for i in wrong], titles, path, ncols,
                      f"misclassified test images: true → predicted (confidence); {len(wrong)} shown")


def _convs(model):
    from ..nn import Conv2D
    return [l for l in model.layers if isinstance(l, Conv2D)]


def first_layer_filters(model, path) -> Path | None:
    """The first convolution's kernels, one image per output channel (channel 0 of the input);
    None when the model has no convolution."""
    convs = _convs(model)
    if not convs:
        return None
    w = as_numpy(convs[0].weight.data)[:, 0]
    lim = float(np.abs(w).max()) or 1.0
    return image_grid(list(w), [str(i) for i in range(len(w))], path, ncols=12,
                      suptitle=f"first-layer filters {tuple(w.shape[1:])} ({convs[0].name}); red > 0 > blue",
                      cmap="RdBu_r", cell=(1.1, 1.25), vmin=-lim, vmax=lim)


def layer_outputs(model, image) -> list:
    """(layer, output (C, H, W) numpy) for every convolution and pooling layer, for one
    uint8 image (H, W), in evaluation mode."""
    from ..data import normalize
    from ..nn import AvgPool2D, Conv2D, MaxPool2D

    was = model.training
    model.eval()
    out = []
    try:
        x = normalize(np.asarray(image, np.uint8)[None], model.xp, model.dtype)
        for layer in model.layers:
            x = layer.forward(x)
            if isinstance(layer, (Conv2D, MaxPool2D, AvgPool2D)):
                out.append((layer, as_numpy(x[0])))
    finally:
        model.train(was)
        model.clear_cache()
    return out


def feature_maps(model, image, out_dir, prefix="featuremaps", max_channels=24) -> list:
    """One PNG per convolution / pooling layer with its feature maps for ``image``; paths."""
    paths = []
    for idx, (layer, fm) in enumerate(layer_outputs(model, image)):
        n = min(len(fm), max_channels)
        more = f", first {n} of {len(fm)} channels" if n < len(fm) else ""
        safe = layer.name.replace("#", "")
        paths.append(image_grid(list(fm[:n]), [str(i) for i in range(n)],
                                Path(out_dir) / f"{prefix}_{idx}_{safe}.png", ncols=12,
                                suptitle=f"{layer.name}: output {tuple(fm.shape)}{more}", cmap="viridis",
                                cell=(1.1, 1.2), title_size=7, suptitle_size=10))
    return paths


def linear_weights(model, path, max_units=32) -> Path | None:
    """Each Linear layer's weight matrix as an image (in × out); a first Linear layer on
    784 = 28×28 inputs also gets its first units' weights drawn as 28×28 templates."""
    from ..nn import Linear

    lins = [l for l in model.layers if isinstance(l, Linear)]
    if not lins:
        return None
    plt = require_matplotlib()
    first = as_numpy(lins[0].weight.data)
    templates = first.shape[0] == 784
    nt = min(max_units, first.shape[1]) if templates else 0
    tcols = min(nt, 16) if nt else 1
    trows = math.ceil(nt / tcols) if nt else 0
    nrows = trows + len(lins)
    fig = plt.figure(figsize=(12, 1.0 * trows + 2.8 * len(lins) + 0.6))
    gs = fig.add_gridspec(nrows, tcols, height_ratios=[1] * trows + [2.6] * len(lins), hspace=0.6)
    for i in range(nt):
        ax = fig.add_subplot(gs[i // tcols, i % tcols])
        w = first[:, i].reshape(28, 28)
        lim = float(np.abs(w).max()) or 1.0
        ax.imshow(w, cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.axis("off")
        ax.set_title(f"unit {i}", fontsize=7)
    for j, l in enumerate(lins):  # one row per layer: output units down, inputs across
        ax = fig.add_subplot(gs[trows + j, :])
        w = as_numpy(l.weight.data)
        lim = float(np.abs(w).max()) or 1.0
        im = ax.imshow(w.T, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
        ax.set_title(f"{l.name}: W {w.shape[0]}→{w.shape[1]}", fontsize=9)
        ax.set_xlabel("input")
        ax.set_ylabel("output unit")
        fig.colorbar(im, ax=ax, fraction=0.03, pad=0.01)
    fig.suptitle("linear-layer weights" + (" (top: first layer's units as 28×28 images)" if nt else ""))
    return _save(fig, path)
