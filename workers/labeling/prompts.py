"""Prompt ensembles: the sentences a label's text embedding is averaged over.

Each label is written into its vocabulary group's templates (art-aware: "a painting of {}.",
"an engraving of {}.", ...) using ``label.prompt`` when a curator or the vocabulary gave one, else
the label's name. The templates come from :mod:`workers.vocabulary`; until a group has its own,
:data:`DEFAULT_TEMPLATES` apply. The fingerprint of the resulting sentences is stored with each
cached text embedding, so editing a prompt or a group's templates re-embeds exactly those labels.
"""
from __future__ import annotations

import hashlib
import json

# Used when the vocabulary has no templates for a group (or is not installed).
DEFAULT_TEMPLATES: tuple[str, ...] = (
    "a painting of {}.",
    "an engraving of {}.",
    "a drawing of {}.",
    "a sculpture of {}.",
    "a photograph of {}.",
    "an artwork depicting {}.",
    "a print of {}.",
    "{}",
)


def templates_for(group: str) -> list[str]:
    """The prompt templates of a vocabulary group (``{}`` marks where the label goes)."""
    try:
        from workers.vocabulary import templates_for as vocabulary_templates
    except ImportError:
        return list(DEFAULT_TEMPLATES)
    templates = [t for t in (vocabulary_templates(group) or []) if t and t.strip()]
    return templates or list(DEFAULT_TEMPLATES)


def label_text(label) -> str:
    return ((getattr(label, "prompt", "") or "").strip() or label.name.strip())


def prompts_for(label, templates: list[str] | None = None) -> list[str]:
    """The ensemble of sentences for one label (duplicates removed, order kept)."""
    text = label_text(label)
    templates = templates if templates is not None else templates_for(label.group)
    sentences = [t.replace("{}", text) if "{}" in t else f"{t} {text}".strip() for t in templates]
    return list(dict.fromkeys(sentences))


def fingerprint(prompts: list[str]) -> str:
    return hashlib.sha256(json.dumps(prompts, ensure_ascii=False).encode()).hexdigest()[:32]
