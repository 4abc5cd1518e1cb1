"""A draft label belongs to the curator who made it: another curator cannot delete it; its owner
and an operator can."""
from __future__ import annotations

import pytest

from archive.models import Label
from explorer import prompt_labels

from .conftest import _user

pytestmark = pytest.mark.django_db


def _delete(client, label):
    return client.post(f"/curate/labels/{label.slug}/", {"action": "delete"})


@pytest.fixture
def draft(curator):
    return prompt_labels.create_prompt_label("Sea monsters", "a painting of a sea monster", curator)


def test_another_curator_cannot_delete_a_draft(client, draft):
    client.force_login(_user("rival", "curator"))
    response = _delete(client, draft)
    assert response.status_code == 403 and b"belongs to cura" in response.content
    assert Label.objects.filter(pk=draft.pk).exists()
    assert b'value="delete"' not in client.get(f"/curate/labels/{draft.slug}/").content


def test_owner_deletes_own_draft(curator_client, draft):
    assert b'value="delete"' in curator_client.get(f"/curate/labels/{draft.slug}/").content
    assert _delete(curator_client, draft).status_code == 302
    assert not Label.objects.filter(pk=draft.pk).exists()


def test_operator_may_delete_any_draft(client, draft):
    client.force_login(_user("boss", "curator", "operator"))
    assert _delete(client, draft).status_code == 302
    assert not Label.objects.filter(pk=draft.pk).exists()
