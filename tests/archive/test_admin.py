"""Every archive model has an admin whose pages render; vectors are read-only."""
from __future__ import annotations

import numpy as np
import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from archive.models import Artwork, ArtworkEmbedding, EmbeddingModel, Job, JobError, NearDuplicate

pytestmark = pytest.mark.django_db


@pytest.fixture
def data():
    a = Artwork.objects.create(source="t", source_id="1", title="One", sha256="a" * 64, status="ok", phash=5, phash_bits=[0.0] * 64)
    b = Artwork.objects.create(source="t", source_id="2", title="Two")
    NearDuplicate.objects.create(artwork=b, other=a, distance=3)
    job = Job.objects.create(kind="import")
    JobError.objects.create(job=job, item="x.jpg", reason="empty file (0 bytes)", artwork=a)
    model = EmbeddingModel.objects.create(key="test/x", arch="x", dim=4)
    ArtworkEmbedding.objects.create(artwork=a, model=model, vector=np.array([1, 0, 0, 0], dtype=np.float32))
    return a


def test_every_archive_model_is_registered():
    missing = [m.__name__ for m in apps.get_app_config("archive").get_models() if not admin.site.is_registered(m)]
    assert missing == []


def test_admin_pages_render(admin_client, data):
    for model in apps.get_app_config("archive").get_models():
        opts = model._meta
        url = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = admin_client.get(url, {"q": "o"} if admin.site._registry[model].search_fields else {})
        assert response.status_code == 200, (url, response.status_code)
        add = admin_client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        assert add.status_code == 200, opts.model_name
        admin_obj = admin.site._registry[model]
        assert admin_obj.list_display != ("__str__",), opts.model_name
        assert admin_obj.search_fields or admin_obj.list_filter, opts.model_name
        fks = [f.name for f in opts.concrete_fields if f.is_relation]
        assert set(fks) <= set(admin_obj.raw_id_fields), (opts.model_name, fks)
    change = admin_client.get(reverse("admin:archive_artwork_change", args=[data.pk]))
    assert change.status_code == 200 and b"64 dims" in change.content
    emb = ArtworkEmbedding.objects.get()
    page = admin_client.get(reverse("admin:archive_artworkembedding_change", args=[emb.pk]))
    assert page.status_code == 200 and b"4 dims" in page.content
    assert b'name="vector"' not in page.content


def test_near_duplicate_review_actions(admin_client, data):
    pair = NearDuplicate.objects.get()
    response = admin_client.post(
        reverse("admin:archive_nearduplicate_changelist"),
        {"action": "mark_different", "_selected_action": [pair.pk]},
    )
    assert response.status_code == 302
    pair.refresh_from_db()
    assert pair.review == "different"
