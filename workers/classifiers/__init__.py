"""Few-shot classifiers curators teach by example (issue 16).

- :mod:`.fit` the learning itself on arrays (scikit-learn): split, cross-validated regularisation,
  threshold for a target precision, test-part figures; no database.
- :mod:`.training` a classifier's examples and embeddings in, a :class:`ClassifierVersion` out.
- :mod:`.applying` score artworks with a version and write its label rows.
- :mod:`.train_stage` (``train_classifier``) and :mod:`.apply_stage` (``apply_classifier``): the jobs.
"""
