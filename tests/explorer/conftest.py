import pytest
from django.contrib.auth.models import Group, User
from django.core.cache import cache

from .archive_data import build_archive, remove_archive
from .test_doppelganger_support import build_archive as build_face_archive
from .test_doppelganger_support import deepface_dir


@pytest.fixture(scope="module")
def archive(django_db_setup, django_db_blocker, aic_dir, culturecraft_dir, tmp_path_factory):
    """The small real archive, built once per test module (committed, shared by its tests) and
    removed afterwards so other modules start from an empty archive. Images are decoded once per
    session (cached)."""
    from django.conf import settings

    root = tmp_path_factory.getbasetemp() / "media"
    root.mkdir(exist_ok=True)
    old = settings.MEDIA_ROOT
    settings.MEDIA_ROOT = root
    try:
        with django_db_blocker.unblock():
            data = build_archive(aic_dir, culturecraft_dir)
    finally:
        settings.MEDIA_ROOT = old
    yield data
    with django_db_blocker.unblock():
        remove_archive(data)


@pytest.fixture(autouse=True)
def _fresh_cache():
    cache.clear()
    yield
    cache.clear()


def _user(name, *groups, staff=False):
    user = User.objects.create_user(name, password="pw-" + name + "-123", is_staff=staff)
    for g in groups:
        user.groups.add(Group.objects.get_or_create(name=g)[0])
    return user


@pytest.fixture
def curator(db):
    return _user("cura", "curator")


@pytest.fixture
def operator(db):
    return _user("oper", "operator")


@pytest.fixture
def visitor(db):
    return _user("visitor")


@pytest.fixture
def curator_client(client, curator):
    client.force_login(curator)
    return client


@pytest.fixture
def operator_client(client, operator):
    client.force_login(operator)
    return client


@pytest.fixture(scope="module")
def face_archive(django_db_setup, django_db_blocker, shared_data, tmp_path_factory):
    """The faces archive (one photo of each of the 13 people as an "artwork" beside real AIC
    portraits, faces found by the real stage), built once per module and committed; removed afterwards."""
    from django.test import override_settings

    root = tmp_path_factory.getbasetemp() / "media"
    root.mkdir(exist_ok=True)
    with override_settings(MEDIA_ROOT=root), django_db_blocker.unblock():
        data = build_face_archive(shared_data)
        assert not data["result"].errors
        yield data
        from archive.models import Artwork

        Artwork.objects.filter(pk__in=data["ids"]).delete()


@pytest.fixture
def photos(shared_data):
    return deepface_dir(shared_data)


@pytest.fixture
def project_logs(caplog):
    """``caplog`` that also sees the project's and Django's loggers, which do not propagate to the
    root logger (settings.LOGGING), at every level. Read ``caplog.text`` (tracebacks included)."""
    import logging

    names = ("archive", "workers", "explorer", "museum", "django")
    saved = []
    for name in names:
        logger = logging.getLogger(name)
        saved.append((logger, logger.level))
        logger.addHandler(caplog.handler)
        logger.setLevel(logging.DEBUG)
    caplog.handler.setLevel(logging.DEBUG)
    yield caplog
    for logger, level in saved:
        logger.removeHandler(caplog.handler)
        logger.setLevel(level)
