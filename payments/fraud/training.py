"""Training the learned fraud score: scikit-learn fits it, model.py's JSON carries it.

Development only (``payments fraud train``): scikit-learn is imported inside the functions,
so importing this module, and the service, never needs it. The model is a standardised
logistic regression over model.Featurizer's vector, evaluated on a held-out, stratified
quarter of the rows *after* export, through LearnedScore: the figure printed is the figure of
the file that ships.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from payments.fraud.features import FraudFeatures
from payments.fraud.model import DEFAULT_FEATURIZER, FORMAT, Featurizer, LearnedScore

VERSION = "fraud-model-v1"
TEST_SHARE = 0.25
# Inverse L2 strength: the default; the data set is large next to ~20 weights.
REGULARISATION_C = 1.0
# Digits kept of every parameter: a readable file whose retrained diff is empty or small.
SIGNIFICANT_DIGITS = 8

Rows = Sequence[tuple[FraudFeatures, int]]


@dataclass(frozen=True)
class Evaluation:
    version: str
    roc_auc: float  # on the held-out rows, scored by the exported model
    n_train: int
    n_test: int
    fraud_rate: float  # of all the rows


def _rounded(value: float) -> float:
    return float(f"{value:.{SIGNIFICANT_DIGITS}g}")


def roc_auc(model: LearnedScore, rows: Rows) -> float:
    """The area under the ROC curve of ``model``'s probabilities on labelled ``rows``."""
    from sklearn.metrics import roc_auc_score  # type: ignore[import-untyped]

    labels = [label for _, label in rows]
    return float(roc_auc_score(labels, [model.probability(features) for features, _ in rows]))


def train(
    rows: Rows,
    seed: int,
    *,
    version: str = VERSION,
    featurizer: Featurizer = DEFAULT_FEATURIZER,
) -> tuple[dict[str, Any], Evaluation]:
    """Fit on a stratified 75 % of ``rows`` (split by ``seed``), evaluate on the rest.

    Returns the model as a JSON object (LearnedScore.from_json reads it; write_model saves it)
    and its evaluation. The same rows and seed give the same model. ValueError when the rows
    lack either class (a stratified split and an AUC need both).
    """
    from sklearn import __version__ as sklearn_version  # type: ignore[import-untyped]
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]
    from sklearn.model_selection import train_test_split  # type: ignore[import-untyped]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped]

    labels = [label for _, label in rows]
    frauds = sum(labels)
    if min(frauds, len(labels) - frauds) < 2:
        raise ValueError(f"{len(labels)} rows with {frauds} fraud: too few of one class")
    train_index, test_index = train_test_split(
        list(range(len(rows))), test_size=TEST_SHARE, stratify=labels, random_state=seed
    )
    vectors = [featurizer.vector(rows[i][0]) for i in train_index]
    scaler = StandardScaler().fit(vectors)
    classifier = LogisticRegression(C=REGULARISATION_C, max_iter=1000)
    classifier.fit(scaler.transform(vectors), [labels[i] for i in train_index])

    held_out = [rows[i] for i in test_index]
    fraud_rate = frauds / len(labels)
    exported: dict[str, Any] = {
        "format": FORMAT,
        "version": version,
        "features": list(featurizer.names),
        **featurizer.to_json(),
        "mean": [_rounded(float(v)) for v in scaler.mean_],
        "scale": [_rounded(float(v)) for v in scaler.scale_],
        "coefficients": [_rounded(float(v)) for v in classifier.coef_[0]],
        "intercept": _rounded(float(classifier.intercept_[0])),
    }
    auc = roc_auc(LearnedScore.from_json(exported, source=f"{version} (just trained)"), held_out)
    # Provenance only (the scorer ignores it): no timestamp, so retraining alike changes nothing.
    exported["training"] = {
        "rows": len(rows),
        "seed": seed,
        "fraud_rate": round(fraud_rate, 6),
        "held_out_share": TEST_SHARE,
        "held_out_roc_auc": round(auc, 6),
        "scikit_learn": sklearn_version,
    }
    evaluation = Evaluation(
        version=version,
        roc_auc=auc,
        n_train=len(train_index),
        n_test=len(test_index),
        fraud_rate=fraud_rate,
    )
    return exported, evaluation


def write_model(model: dict[str, Any], path: Path) -> None:
    """Save an exported model where LearnedScore.load reads it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(model, indent=2) + "\n", encoding="utf-8")
