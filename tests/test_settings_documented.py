"""Every setting the docs name in their settings tables is read from the environment in
museum/settings.py and listed in the README's configuration table, and the README lists nothing
that settings.py does not read."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Variables read by others than Django's settings: OpenMP (set by the worker), Hugging Face's
# cache and hub (workers/ml/weights.py, at each download), the embedded PostgreSQL's data folder
# and the old server's binaries for upgrading it (museum/embedded_pg.py and museum/pg_upgrade.py,
# before settings exist), gunicorn's and ./run serve's (museum/gunicorn_conf.py).
NOT_DJANGO = {"OMP_WAIT_POLICY", "HF_HOME", "HF_HUB_CACHE", "HF_HUB_OFFLINE", "HF_ENDPOINT", "PGSERVER_DATA", "EMBEDDED_PG_MEMORY",
              "PGSERVER_UPGRADE_BIN", "SERVE_BIND", "WEB_CONCURRENCY", "SERVE_THREADS", "SERVE_TIMEOUT",
              "SERVE_MIGRATE", "FORWARDED_ALLOW_IPS"}


def table_names(text: str) -> set[str]:
    """The variables in the first column of a markdown table (`A` / `B` and `A`,`B` cells too)."""
    names = set()
    for line in text.splitlines():
        if line.startswith("| `"):
            names |= set(re.findall(r"`([A-Z][A-Z0-9_]+)`", line.split("|")[1]))
    return names


def read_in_settings() -> set[str]:
    source = (ROOT / "museum" / "settings.py").read_text()
    return set(re.findall(r'(?:environ\.get|env_[a-z]+)\(\s*"([A-Z][A-Z0-9_]+)"', source))


def test_every_documented_setting_is_read_from_the_environment_and_in_the_readme():
    read = read_in_settings()
    readme = table_names((ROOT / "README.md").read_text())
    documented = set()
    for doc in sorted((ROOT / "docs").glob("*.md")):
        documented |= table_names(doc.read_text())
    assert {"LABEL_TOP_K", "FACE_UPSAMPLE", "MAX_METADATA_BYTES"} <= documented  # the tables are found
    assert not (documented - read - NOT_DJANGO), "documented but not read in museum/settings.py"
    assert not (documented - readme - {"OMP_WAIT_POLICY"}), "documented but missing from the README table"
    assert not (readme - read - NOT_DJANGO), "in the README table but not read in museum/settings.py"


def test_the_settings_have_the_defaults_the_docs_give():
    from django.conf import settings

    assert (settings.LABEL_TOP_K, settings.LABEL_BATCH_SIZE, settings.LABEL_THRESHOLD) == (20, 2000, None)
    assert (settings.LABEL_THRESHOLD_PERCENTILE, settings.LABEL_STATS_SAMPLE) == (95.0, 10_000)
    assert (settings.FACE_MODEL, settings.FACE_DETECTOR, settings.FACE_DERIVATIVE_SIZE, settings.FACE_UPSAMPLE) == (
        "dlib-resnet-v1", "mtcnn", 1024, 1)
    assert (settings.FACE_MTCNN_THRESHOLD, settings.FACE_MTCNN_MIRROR, settings.FACE_MTCNN_STAGE_THRESHOLDS) == (
        0.85, True, "0.4,0.5,0.5")
    assert settings.FACE_MIN_HEIGHT == 20
    assert (settings.DOPPELGANGER_DETECTOR, settings.DOPPELGANGER_MAX_BYTES, settings.DOPPELGANGER_MAX_PIXELS) == (
        "hog", 8 * 1024 * 1024, 40_000_000)
    assert settings.EMBED_INDEX_AFTER_LOAD == 20_000


def test_settings_come_from_the_environment(tmp_path):
    """A fresh interpreter with the variables set sees them (settings.py reads them at start)."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "museum.settings", "DATABASE_URL": "postgresql://u:p@127.0.0.1:1/none",
           "LABEL_TOP_K": "7", "LABEL_THRESHOLD": "0.25", "FACE_UPSAMPLE": "0", "DOPPELGANGER_MAX_PIXELS": "1000",
           "PRIVATE_ROOT": str(tmp_path / "p"), "MEDIA_STORAGE": "django.core.files.storage.InMemoryStorage",
           "MEDIA_STORAGE_OPTIONS": '{"base_url": "/m/"}'}
    code = ("import json; from django.conf import settings as s; print(json.dumps([s.LABEL_TOP_K, s.LABEL_THRESHOLD, "
            "s.FACE_UPSAMPLE, s.DOPPELGANGER_MAX_PIXELS, str(s.PRIVATE_ROOT), s.STORAGES['default']]))")
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [7, 0.25, 0, 1000, str(tmp_path / "p"),
                                      {"BACKEND": "django.core.files.storage.InMemoryStorage", "OPTIONS": {"base_url": "/m/"}}]
