"""Maps of the archive: reduce embeddings, lay them out with UMAP or t-SNE, place new artworks,
name regions, and export compact static files for the WebGL map page.

The modules are plain functions over arrays and ids; :mod:`workers.layouts.build` is the job entry
that the layout stage (:mod:`workers.layouts.stage`) and the ``build_map`` command call.
"""
