"""Django admin for every model of the archive.

Every admin shows foreign keys as raw ids (tables hold millions of rows) and vectors read-only as
a short summary (dimension and first values), never as an editable text box. Models without a
hand-written admin below are registered with the same defaults, so a model added to
``archive/models`` appears in the admin without touching this file.
"""
from __future__ import annotations

import numpy as np
from django.apps import apps
from django.contrib import admin
from django.db import models
from django.utils.html import format_html
from pgvector.django import HalfVectorField, VectorField

from archive import models as m
from archive.vectors import from_value


def _vector_fields(model) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if isinstance(f, (VectorField, HalfVectorField))]


def _generated_fields(model) -> list[str]:
    return [f.name for f in model._meta.concrete_fields if isinstance(f, models.GeneratedField)]


def vector_summary(value) -> str:
    if value is None:
        return "—"
    arr = from_value(value).ravel()
    head = ", ".join(f"{x:.3g}" for x in arr[:6])
    return f"{arr.size} dims [{head}{', …' if arr.size > 6 else ''}] |v|={float(np.linalg.norm(arr)):.3f}"


class ArchiveAdmin(admin.ModelAdmin):
    """Defaults for every archive model: raw-id foreign keys, read-only vectors and generated columns."""

    list_per_page = 50
    show_full_result_count = False  # COUNT(*) on millions of rows on every page is slow

    def __init__(self, model, admin_site):
        fks = [f.name for f in model._meta.concrete_fields if isinstance(f, models.ForeignKey)]
        if not self.raw_id_fields:
            self.raw_id_fields = tuple(fks)
        super().__init__(model, admin_site)
        self._vectors = _vector_fields(model)
        self._generated = _generated_fields(model)

    def get_exclude(self, request, obj=None):
        return tuple(super().get_exclude(request, obj) or ()) + tuple(self._vectors) + tuple(self._generated)

    def get_readonly_fields(self, request, obj=None):
        extra = ("vectors",) if self._vectors else ()
        return tuple(super().get_readonly_fields(request, obj)) + extra

    @admin.display(description="Vectors (read-only)")
    def vectors(self, obj):
        return format_html(
            "<br>".join(f"<b>{name}</b>: {{}}" for name in self._vectors),
            *[vector_summary(getattr(obj, name)) for name in self._vectors],
        )


class NearDuplicateInline(admin.TabularInline):
    model = m.NearDuplicate
    fk_name = "artwork"
    raw_id_fields = ("other",)
    fields = ("other", "distance", "review")
    readonly_fields = ("distance",)
    extra = 0


@admin.register(m.Artwork)
class ArtworkAdmin(ArchiveAdmin):
    list_display = ("id", "thumb", "title", "creator", "display_date", "year_start", "institution", "source", "status")
    list_display_links = ("id", "title")
    list_filter = ("status", "source", "institution", "classification")
    search_fields = ("title", "creator", "source_id", "sha256", "medium")
    readonly_fields = ("sha256", "phash", "width", "height", "created_at", "updated_at", "thumb_large")
    inlines = [NearDuplicateInline]

    @admin.display(description="Image")
    def thumb(self, obj):
        return format_html('<img src="{}" style="max-height:48px">', obj.derivative_url(128)) if obj.has_image else "—"

    @admin.display(description="Image")
    def thumb_large(self, obj):
        return format_html('<img src="{}" style="max-height:256px">', obj.thumbnail_url) if obj.has_image else "—"


@admin.register(m.NearDuplicate)
class NearDuplicateAdmin(ArchiveAdmin):
    list_display = ("id", "artwork", "other", "distance", "review", "created_at")
    list_filter = ("review", "distance")
    search_fields = ("artwork__title", "other__title")
    list_editable = ("review",)
    actions = ["mark_same", "mark_different"]

    @admin.action(description="Mark as the same work")
    def mark_same(self, request, queryset):
        queryset.update(review=m.NearDuplicate.Review.SAME)

    @admin.action(description="Mark as different works")
    def mark_different(self, request, queryset):
        queryset.update(review=m.NearDuplicate.Review.DIFFERENT)


class JobErrorInline(admin.TabularInline):
    model = m.JobError
    fk_name = "job"
    fields = ("item", "reason", "artwork", "retried_in")
    readonly_fields = ("item", "reason", "artwork", "retried_in")
    extra = 0
    max_num = 0
    show_change_link = True


@admin.register(m.Job)
class JobAdmin(ArchiveAdmin):
    list_display = ("id", "kind", "state", "total", "done", "failed", "rate", "created_at", "finished_at", "message")
    list_filter = ("kind", "state")
    search_fields = ("message", "params")
    readonly_fields = ("created_at", "started_at", "finished_at", "heartbeat_at", "rate")
    inlines = [JobErrorInline]


@admin.register(m.JobBatch)
class JobBatchAdmin(ArchiveAdmin):
    list_display = ("id", "job", "seq", "state", "start", "size", "attempts", "done", "failed", "worker", "lease_expires_at", "updated_at")
    list_filter = ("state", "job__kind")
    search_fields = ("worker",)


@admin.register(m.JobError)
class JobErrorAdmin(ArchiveAdmin):
    list_display = ("id", "job", "item", "reason", "artwork", "retried_in", "created_at")
    list_filter = ("job__kind",)
    search_fields = ("item", "reason")


@admin.register(m.EmbeddingModel)
class EmbeddingModelAdmin(ArchiveAdmin):
    list_display = ("id", "key", "arch", "dim", "state", "untrained", "created_at", "activated_at")
    list_filter = ("state", "untrained")
    search_fields = ("key", "arch", "pretrained")


@admin.register(m.ArtworkEmbedding)
class ArtworkEmbeddingAdmin(ArchiveAdmin):
    list_display = ("id", "artwork", "model", "dims", "institution", "duplicate", "created_at")

    @admin.display(description="Dims")
    def dims(self, obj):
        return 0 if obj.vector is None else len(from_value(obj.vector))  # a HalfVector (halfvec column)

    list_filter = ("model", "duplicate")
    search_fields = ("artwork__title", "institution")


@admin.register(m.Label)
class LabelAdmin(ArchiveAdmin):
    list_display = ("id", "name", "group", "published", "threshold", "source", "created_at")
    list_filter = ("group", "published")
    search_fields = ("name", "slug", "prompt", "description")
    prepopulated_fields = {"slug": ("name",)}


@admin.register(m.LabelEmbedding)
class LabelEmbeddingAdmin(ArchiveAdmin):
    list_display = ("id", "label", "model", "score_mean", "score_std", "default_threshold", "created_at")
    list_filter = ("model",)
    search_fields = ("label__name",)


@admin.register(m.ArtworkLabel)
class ArtworkLabelAdmin(ArchiveAdmin):
    list_display = ("id", "artwork", "label", "model", "score", "rank")
    list_filter = ("model", "rank")
    search_fields = ("label__name", "artwork__title")


@admin.register(m.LabelDecision)
class LabelDecisionAdmin(ArchiveAdmin):
    list_display = ("id", "artwork", "label", "decision", "user", "created_at")
    list_filter = ("decision",)
    search_fields = ("label__name", "artwork__title")


@admin.register(m.LabelCount)
class LabelCountAdmin(ArchiveAdmin):
    """Kept by archive.label_counts; shown for inspection. A hand edit lasts until the next recount
    (manage.py refresh_label_counts)."""

    list_display = ("id", "label", "model", "count", "threshold", "updated_at")
    list_filter = ("model",)
    search_fields = ("label__name",)


@admin.register(m.Face)
class FaceAdmin(ArchiveAdmin):
    list_display = ("id", "artwork", "model", "x", "y", "w", "h", "score", "not_a_face", "created_at")
    list_filter = ("model", "not_a_face")
    search_fields = ("artwork__title",)


@admin.register(m.Layout)
class LayoutAdmin(ArchiveAdmin):
    list_display = ("id", "name", "method", "model", "state", "point_count", "is_default", "created_at", "built_at")
    list_filter = ("method", "state", "is_default")
    search_fields = ("name", "slug")


@admin.register(m.LayoutPoint)
class LayoutPointAdmin(ArchiveAdmin):
    list_display = ("id", "layout", "artwork", "face", "x", "y", "cluster", "placed_incrementally")
    list_filter = ("layout", "placed_incrementally")
    search_fields = ("artwork__title",)


@admin.register(m.Region)
class RegionAdmin(ArchiveAdmin):
    list_display = ("id", "layout", "level", "cluster", "name", "size")
    list_filter = ("layout", "level")
    search_fields = ("name",)


@admin.register(m.Collection)
class CollectionAdmin(ArchiveAdmin):
    list_display = ("id", "title", "slug", "owner", "is_public", "created_at")
    list_filter = ("is_public",)
    search_fields = ("title", "slug", "description")
    prepopulated_fields = {"slug": ("title",)}


@admin.register(m.CollectionItem)
class CollectionItemAdmin(ArchiveAdmin):
    list_display = ("id", "collection", "artwork", "position", "added_at")
    list_filter = ("collection",)
    search_fields = ("artwork__title", "note")


@admin.register(m.Classifier)
class ClassifierAdmin(ArchiveAdmin):
    list_display = ("id", "label", "target_precision", "seed", "applied_version", "created_by", "created_at")
    search_fields = ("label__name",)



@admin.register(m.ClassifierClass)
class ClassifierClassAdmin(ArchiveAdmin):
    list_display = ("id", "classifier", "position", "label")
    search_fields = ("label__name", "classifier__label__name")


@admin.register(m.ArtworkNeighbours)
class ArtworkNeighboursAdmin(ArchiveAdmin):
    list_display = ("id", "artwork", "model", "computed_at")
    list_filter = ("model",)
    search_fields = ("artwork__title",)

def _default_list_display(model) -> tuple[str, ...]:
    names = ["id"]
    for field in model._meta.concrete_fields:
        if field.name == "id" or isinstance(field, (VectorField, HalfVectorField, models.JSONField, models.TextField, models.GeneratedField)):
            continue
        names.append(field.name)
        if len(names) >= 8:
            break
    return tuple(names)


def register_remaining() -> None:
    """Register any archive model that has no admin above, with the same defaults."""
    for model in apps.get_app_config("archive").get_models():
        if admin.site.is_registered(model):
            continue
        filters = tuple(
            f.name for f in model._meta.concrete_fields
            if (f.choices or isinstance(f, models.BooleanField)) and not isinstance(f, models.ForeignKey)
        )
        searchable = tuple(
            f.name for f in model._meta.concrete_fields
            if isinstance(f, (models.CharField, models.TextField)) and not f.choices
        )[:4]
        attrs = {"list_display": _default_list_display(model), "list_filter": filters, "search_fields": searchable}
        admin.site.register(model, type(f"{model.__name__}Admin", (ArchiveAdmin,), attrs))


register_remaining()
