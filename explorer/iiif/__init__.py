"""IIIF out: Presentation API 3.0 manifests of artworks and collections of them (by label, curator
collection, institution), at stable public URLs under ``/iiif/`` (see docs/iiif.md)."""
