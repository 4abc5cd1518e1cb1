"""Pure top-k scoring (no database): chunking and the two top-k methods agree."""
import numpy as np
import pytest

from workers.labeling.prompts import fingerprint, prompts_for
from workers.labeling.scoring import LabelScorer, normalise_rows, rows_for, top_k_numpy, top_k_torch


def _data(n=103, labels=57, dim=32, seed=1):
    rng = np.random.default_rng(seed)
    return normalise_rows(rng.standard_normal((n, dim), dtype=np.float32)), normalise_rows(rng.standard_normal((labels, dim), dtype=np.float32))


def test_topk_methods_agree_with_full_sort():
    emb, lab = _data()
    scores = emb @ lab.T
    expected = np.argsort(-scores, axis=1)[:, :7]
    for idx, vals in (top_k_numpy(scores, 7), top_k_torch(scores, 7)):
        assert np.array_equal(idx, expected)
        assert np.allclose(vals, np.take_along_axis(scores, expected, axis=1))
        assert (np.diff(vals, axis=1) <= 0).all()


def test_chunked_scoring_equals_one_chunk():
    emb, lab = _data()
    ids = np.arange(1000, 1000 + len(emb))
    one = list(LabelScorer(lab, 5, max_rows=10_000).score_chunks([(ids, emb)]))
    assert len(one) == 1
    # chunks of 10 embeddings arriving in uneven pieces, each split again into pieces of 4 rows
    pieces = [(ids[i : i + 10], emb[i : i + 10]) for i in range(0, len(ids), 10)]
    many = list(LabelScorer(lab, 5, max_rows=4, method="numpy").score_chunks(pieces))
    assert len(many) > 20
    assert np.array_equal(np.concatenate([m[0] for m in many]), one[0][0])
    assert np.array_equal(np.concatenate([m[1] for m in many]), one[0][1])
    assert np.allclose(np.concatenate([m[2] for m in many]), one[0][2], atol=1e-6)


def test_rows_for_ranks_and_label_ids():
    emb, lab = _data(n=3, labels=6)
    label_ids = np.array([11, 12, 13, 14, 15, 16])
    ids, idx, vals = next(LabelScorer(lab, 4).score_chunks([(np.array([7, 8, 9]), emb)]))
    rows = rows_for(ids, label_ids, idx, vals)
    assert rows["artwork_id"].tolist() == [7] * 4 + [8] * 4 + [9] * 4
    assert rows["rank"].tolist() == [1, 2, 3, 4] * 3
    assert set(rows["label_id"].tolist()) <= set(label_ids.tolist())
    assert len(set(rows["label_id"][:4].tolist())) == 4


def test_k_larger_than_vocabulary_and_bad_input():
    emb, lab = _data(n=4, labels=3)
    scorer = LabelScorer(lab, 20)
    assert scorer.k == 3
    with pytest.raises(ValueError, match="dimensions"):
        scorer.score(np.zeros((2, 5), dtype=np.float32))
    with pytest.raises(ValueError, match="empty"):
        LabelScorer(np.zeros((0, 32), dtype=np.float32), 5)


class _L:
    def __init__(self, name, prompt="", group="g"):
        self.name, self.prompt, self.group = name, prompt, group


def test_prompt_ensemble_uses_prompt_else_name():
    templates = ["a painting of {}.", "an engraving of {}.", "{}"]
    assert prompts_for(_L("dog"), templates) == ["a painting of dog.", "an engraving of dog.", "dog"]
    assert prompts_for(_L("dog", "a sleeping dog"), templates)[0] == "a painting of a sleeping dog."
    assert fingerprint(prompts_for(_L("dog"), templates)) != fingerprint(prompts_for(_L("dog", "a dog"), templates))
