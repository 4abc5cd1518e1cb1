"""The archive's data, one module per concern."""
from .artworks import Artwork, NearDuplicate
from .classifiers import Classifier, ClassifierClass, ClassifierExample, ClassifierVersion
from .collections import Collection, CollectionItem
from .embeddings import ArtworkEmbedding, EmbeddingModel
from .faces import Face
from .harvests import HarvestState
from .jobs import Job, JobBatch, JobError
from .labels import ArtworkLabel, Label, LabelCount, LabelDecision, LabelEmbedding
from .maps import Layout, LayoutPoint, Region
from .neighbours import ArtworkNeighbours
from .ocr import ArtworkText
from .palettes import ArtworkPalette

__all__ = [
    "Artwork",
    "ArtworkEmbedding",
    "ArtworkLabel",
    "ArtworkNeighbours",
    "ArtworkPalette",
    "ArtworkText",
    "Classifier",
    "ClassifierClass",
    "ClassifierExample",
    "ClassifierVersion",
    "Collection",
    "CollectionItem",
    "EmbeddingModel",
    "Face",
    "HarvestState",
    "Job",
    "JobBatch",
    "JobError",
    "Label",
    "LabelCount",
    "LabelDecision",
    "LabelEmbedding",
    "Layout",
    "LayoutPoint",
    "NearDuplicate",
    "Region",
]
