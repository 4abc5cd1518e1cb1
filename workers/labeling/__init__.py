"""Zero-shot labelling: prompt ensembles, top-k scoring of the archive, thresholds, curator labels.

Modules: :mod:`.prompts` (templates), :mod:`.text` (cached label text embeddings),
:mod:`.setup` (label texts made ready inside a label job), :mod:`.scoring` (pure top-k array
code), :mod:`.store` (database reads/writes), :mod:`.stats` (calibration, derived thresholds),
:mod:`.thresholds` (curator thresholds across a model switch), :mod:`.visible` (what is shown),
:mod:`.curator` (labels scored on demand), :mod:`.curator_job` (the ``score_label`` job stage),
:mod:`.stage` (the label job stage), :mod:`.vocabulary` (vocabulary upsert).
See docs/labels.md.
"""
from .curator import apply_label, score_label
from .scoring import LabelScorer
from .stage import STAGE, label_artworks, prepare
from .stats import compute_label_stats
from .text import ensure_label_embeddings
from .visible import ShownLabel, artworks_for_label, visible_labels, visible_labels_for
from .vocabulary import load_vocabulary

__all__ = [
    "STAGE",
    "LabelScorer",
    "ShownLabel",
    "apply_label",
    "artworks_for_label",
    "compute_label_stats",
    "ensure_label_embeddings",
    "label_artworks",
    "load_vocabulary",
    "prepare",
    "score_label",
    "visible_labels",
    "visible_labels_for",
]
