"""Accuracy of a classification: OA, Cohen's kappa, per-class F1, confusion matrix (table + PNG)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, confusion_matrix, f1_score


@dataclass(frozen=True)
class AccuracyReport:
    """Scores of predictions against held-out reference labels.

    Attributes
    ----------
    overall_accuracy, kappa : fractions in [0, 1] (kappa may be negative).
    f1 : class name -> F1 score.
    confusion : rows = reference, columns = predicted class (pixel counts), order of ``classes``.
    classes : class names; ``n`` : number of test pixels.
    """

    overall_accuracy: float
    kappa: float
    f1: dict[str, float]
    confusion: list[list[int]]
    classes: list[str]
    n: int

    def to_markdown(self) -> str:
        """OA, kappa, per-class F1 and the confusion matrix as Markdown tables."""
        lines = [
            f"OA {self.overall_accuracy:.3f}, kappa {self.kappa:.3f} (n = {self.n} test pixels)",
            "",
            "| reference \\ predicted | " + " | ".join(self.classes) + " | F1 |",
            "|" + "---|" * (len(self.classes) + 2),
        ]
        for name, row in zip(self.classes, self.confusion, strict=True):
            lines.append(
                f"| {name} | " + " | ".join(str(v) for v in row) + f" | {self.f1[name]:.3f} |"
            )
        return "\n".join(lines)

    def save(self, out_dir: Path, stem: str = "accuracy") -> dict[str, Path]:
        """Write ``<stem>.json``, ``<stem>.md`` and the confusion matrix ``<stem>.png``."""
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = {k: out_dir / f"{stem}.{k}" for k in ("json", "md", "png")}
        paths["json"].write_text(json.dumps(asdict(self), indent=2))
        paths["md"].write_text(self.to_markdown() + "\n")
        plot_confusion(
            np.asarray(self.confusion), self.classes, paths["png"], f"kappa {self.kappa:.3f}"
        )
        return paths


def assess(y_true: np.ndarray, y_pred: np.ndarray, class_names: dict[int, str]) -> AccuracyReport:
    """Score predicted against reference class ids (both (n,) int), classes of ``class_names``."""
    ids = [c for c in class_names if np.any(y_true == c) or np.any(y_pred == c)]
    f1 = f1_score(y_true, y_pred, labels=ids, average=None, zero_division=0)
    return AccuracyReport(
        overall_accuracy=float(accuracy_score(y_true, y_pred)),
        kappa=float(cohen_kappa_score(y_true, y_pred, labels=ids)),
        f1={class_names[c]: float(v) for c, v in zip(ids, f1, strict=True)},
        confusion=confusion_matrix(y_true, y_pred, labels=ids).tolist(),
        classes=[class_names[c] for c in ids],
        n=len(y_true),
    )


def plot_confusion(cm: np.ndarray, classes: list[str], path: Path, title: str = "") -> None:
    """Row-normalised confusion matrix as a PNG (counts annotated)."""
    import matplotlib

    matplotlib.use("Agg")  # headless workers and CI have no display
    import matplotlib.pyplot as plt

    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.6 * len(classes), 0.8 + 0.6 * len(classes)))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set(
        xticks=range(len(classes)),
        yticks=range(len(classes)),
        xlabel="predicted",
        ylabel="reference",
    )
    ax.set_xticklabels(classes, rotation=45, ha="right")
    ax.set_yticklabels(classes)
    for (i, j), v in np.ndenumerate(cm):
        ax.text(
            j,
            i,
            str(v),
            ha="center",
            va="center",
            fontsize=7,
            color="white" if norm[i, j] > 0.5 else "black",
        )
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
