"""Django settings. Every deployment-specific value comes from the environment; see the README's
configuration table for the variables and their defaults."""
from __future__ import annotations

import json
import os
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None:
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value not in (None, "") else default


def env_float(name: str, default: float | None) -> float | None:
    value = os.environ.get(name)
    return float(value) if value not in (None, "") else default


def env_json(name: str, default: dict) -> dict:
    value = os.environ.get(name)
    if value in (None, ""):
        return default
    parsed = json.loads(value)
    if not isinstance(parsed, dict):
        raise ValueError(f"{name} must be a JSON object, got {value!r}")
    return parsed


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG", False)
SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG and os.environ.get("MUSEUM_REQUIRE_SECRET_KEY"):
        raise RuntimeError("SECRET_KEY must be set in production (MUSEUM_REQUIRE_SECRET_KEY is set).")
    # Development/demo default. Persisted under var/ so sessions survive restarts.
    # Written with mode 0600; an older, world-readable file is tightened (museum.secret_files).
    from museum.secret_files import read_secret, write_secret

    _key_file = BASE_DIR / "var" / "secret_key"
    SECRET_KEY = read_secret(_key_file) or ""
    if not SECRET_KEY:
        from django.core.management.utils import get_random_secret_key

        SECRET_KEY = get_random_secret_key()
        write_secret(_key_file, SECRET_KEY)

# --- Deployment security (docs/security.md) ----------------------------------------------------
# MUSEUM_PRODUCTION=true: HTTPS everywhere (redirect, HSTS for a year, Secure cookies) and a
# required SECRET_KEY, so that `manage.py check --deploy` is clean; each setting can still be set
# on its own.
PRODUCTION = env_bool("MUSEUM_PRODUCTION", False)
if PRODUCTION and not DEBUG and not os.environ.get("SECRET_KEY"):
    raise RuntimeError("SECRET_KEY must be set when MUSEUM_PRODUCTION is on.")
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", PRODUCTION)
# Liveness and readiness probes (museum/health.py) come over plain HTTP from inside the network.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31_536_000 if PRODUCTION else 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", PRODUCTION)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", PRODUCTION)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", PRODUCTION)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", PRODUCTION)
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https" (the header and the value that
# means HTTPS). Only set it when the proxy always sets or strips that header.
_proxy_ssl = env_list("SECURE_PROXY_SSL_HEADER")
SECURE_PROXY_SSL_HEADER = (_proxy_ssl[0], _proxy_ssl[1]) if len(_proxy_ssl) == 2 else None
SECURE_REFERRER_POLICY = os.environ.get("SECURE_REFERRER_POLICY", "same-origin")
X_FRAME_OPTIONS = "DENY"
# The Content-Security-Policy header (museum.security); empty: no header.
from museum.security import DEFAULT_POLICY as _DEFAULT_CSP  # noqa: E402

CONTENT_SECURITY_POLICY = os.environ.get("CONTENT_SECURITY_POLICY", _DEFAULT_CSP)

ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "rest_framework",
    "drf_spectacular",
    "archive",
    "workers",
    "explorer",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Static files under a production server (`./run serve`): WhiteNoise serves STATIC_ROOT with
    # compression and caching headers, before any other middleware runs (museum/static_files.py).
    "museum.static_files.StaticFilesMiddleware",
    "museum.security.ContentSecurityPolicyMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before CSRF (which parses the body): upload size checked and kept in memory (explorer.uploads).
    "explorer.uploads.UploadGuardMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "museum.urls"
WSGI_APPLICATION = "museum.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database: DATABASE_URL, else the embedded PostgreSQL under var/pgdata -------------------
DATABASE_URL = os.environ.get("DATABASE_URL", "")
if not DATABASE_URL:
    from museum.embedded_pg import database_url

    DATABASE_URL = database_url(BASE_DIR)
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["TEST"] = {"NAME": os.environ.get("TEST_DATABASE_NAME", "test_museum")}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", BASE_DIR / "var" / "staticfiles"))
# WhiteNoise (`./run serve`): seconds browsers may cache a static file.
WHITENOISE_AUTOREFRESH = DEBUG
WHITENOISE_MAX_AGE = env_int("STATIC_MAX_AGE", 3600)
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(os.environ.get("MEDIA_ROOT", BASE_DIR / "var" / "media"))
# Files only the workers read (fetched metadata files of imports): never served.
PRIVATE_ROOT = Path(os.environ.get("PRIVATE_ROOT", BASE_DIR / "var" / "private"))
# Fitted layout models (pickles holding the training vectors) used to place new artworks on a map.
# Workers only: must lie outside MEDIA_ROOT and the static files, which are served publicly.
MAP_MODEL_ROOT = Path(os.environ.get("MAP_MODEL_ROOT", BASE_DIR / "var" / "maps-models"))
# Every stored file goes through archive/storage.py over these stores. The public and private
# ones take any Django storage class (MEDIA_STORAGE / PRIVATE_STORAGE, options as a JSON object);
# the folders read MEDIA_ROOT, PRIVATE_ROOT and MAP_MODEL_ROOT on every use.
STORAGES = {
    "default": {
        "BACKEND": os.environ.get("MEDIA_STORAGE") or "archive.storage.MediaFolder",
        "OPTIONS": env_json("MEDIA_STORAGE_OPTIONS", {}),
    },
    "private": {
        "BACKEND": os.environ.get("PRIVATE_STORAGE") or "archive.storage.PrivateFolder",
        "OPTIONS": env_json(
            "PRIVATE_STORAGE_OPTIONS",
            {} if os.environ.get("PRIVATE_STORAGE") else {"setting": "PRIVATE_ROOT", "default": "var/private"},
        ),
    },
    "maps-models": {
        "BACKEND": "archive.storage.PrivateFolder",
        "OPTIONS": {"setting": "MAP_MODEL_ROOT", "default": "var/maps-models"},
    },
    # collectstatic also writes gzip and Brotli copies that WhiteNoise serves to clients that take them.
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# S3-compatible object storage (museum/object_storage.py, docs/deploy.md): STORAGE_URL puts the
# public and private stores in buckets; MEDIA_STORAGE / PRIVATE_STORAGE, when set, still win.
from museum import object_storage  # noqa: E402

_object_storage_env = {
    "STORAGE_URL": os.environ.get("STORAGE_URL", ""),
    "PRIVATE_STORAGE_URL": os.environ.get("PRIVATE_STORAGE_URL", ""),
    "STORAGE_ENDPOINT_URL": os.environ.get("STORAGE_ENDPOINT_URL", ""),
    "STORAGE_REGION": os.environ.get("STORAGE_REGION", ""),
    "STORAGE_CDN_DOMAIN": os.environ.get("STORAGE_CDN_DOMAIN", ""),
    "STORAGE_CACHE_CONTROL": os.environ.get("STORAGE_CACHE_CONTROL", ""),
}
for _alias, _store in object_storage.stores(_object_storage_env).items():
    if not os.environ.get({"default": "MEDIA_STORAGE", "private": "PRIVATE_STORAGE"}[_alias]):
        STORAGES[_alias] = _store

LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    # Third-party libraries (open_clip, umap, ...) log chatty INFO lines on the root logger; the
    # project's own loggers follow LOG_LEVEL.
    "root": {"handlers": ["console"], "level": os.environ.get("LIBRARY_LOG_LEVEL", "WARNING")},
    "loggers": {
        **{
            name: {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO"), "propagate": False}
            for name in ("archive", "workers", "explorer", "museum", "django")
        },
        "django.db.backends": {"level": "WARNING"},
    },
}

# --- Images and ingest ------------------------------------------------------------------------
# Long-side sizes of the JPEG derivatives written once at ingest; the ML workers read these.
DERIVATIVE_SIZES = (128, 256, 512, 1024)
# Declared pixel count above which an image is refused as a decompression bomb.
MAX_IMAGE_PIXELS = env_int("MAX_IMAGE_PIXELS", 1_000_000_000)
# Non-JPEG images above this many pixels cannot be decoded at reduced size and are refused.
MAX_DECODE_PIXELS = env_int("MAX_DECODE_PIXELS", 300_000_000)
# Largest original file accepted (bytes), for local files and downloads.
MAX_IMAGE_BYTES = env_int("MAX_IMAGE_BYTES", 1_000_000_000)
# Perceptual-hash Hamming distance at or below which two artworks are flagged as near-duplicates.
NEAR_DUPLICATE_DISTANCE = env_int("NEAR_DUPLICATE_DISTANCE", 6)
# Image decoding threads per import batch (per ingest worker process, or per `import` run).
INGEST_WORKERS = env_int("INGEST_WORKERS", os.cpu_count() or 1)
# Records with an image per import batch (one task on the ingest queue each); records without an
# image go 1000 to a batch.
INGEST_BATCH_SIZE = env_int("INGEST_BATCH_SIZE", 256)
# Largest metadata file downloaded from a URL (bytes, after decompressing the transfer).
MAX_METADATA_BYTES = env_int("MAX_METADATA_BYTES", 20_000_000_000)
HTTP_TIMEOUT = env_int("HTTP_TIMEOUT", 30)
# The Art Institute of Chicago's API, the demo's default source.
AIC_API_URL = os.environ.get("AIC_API_URL", "https://api.artic.edu/api/v1")
# --- Source policy and outbound fetches (archive.importers.policy, archive.fetch) --------------
# Extra folders that local image paths of any local source may lie in, and that imports started
# from the dashboard or the API may read (the command line may import any path).
IMPORT_ALLOWED_ROOTS = env_list("IMPORT_ALLOWED_ROOTS")
# Hosts, addresses or networks (CIDR) fetched from although internal (loopback, private, link-local):
# e.g. an on-site IIIF server "iiif.local,10.1.2.0/24". Empty: only public addresses are fetched.
FETCH_ALLOWED_HOSTS = env_list("FETCH_ALLOWED_HOSTS")
# Longest a whole download may take (HTTP_TIMEOUT bounds each connect and read).
FETCH_MAX_SECONDS = env_int("FETCH_MAX_SECONDS", 600)
# Largest IIIF manifest or collection fetched from a URL.
MAX_MANIFEST_BYTES = env_int("MAX_MANIFEST_BYTES", 100_000_000)
# --- IIIF out (explorer.iiif) ------------------------------------------------------------------
# The archive's public address that IIIF ids are built from (e.g. https://art.example.org); empty:
# the address of each request.
IIIF_BASE_URL = os.environ.get("IIIF_BASE_URL", "").rstrip("/")
# Manifests listed per IIIF collection (or per page of a larger one).
IIIF_COLLECTION_PAGE_SIZE = env_int("IIIF_COLLECTION_PAGE_SIZE", 1000)

# --- Celery -----------------------------------------------------------------------------------
# Default broker: kombu's SQLAlchemy transport on the same PostgreSQL, so a fresh machine needs no
# broker server. Set CELERY_BROKER_URL=redis://... or amqp://... for Redis or RabbitMQ.
def _default_broker(url: str) -> str:
    scheme, rest = url.split("://", 1)
    return "sqla+postgresql+psycopg://" + rest


CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL") or _default_broker(DATABASE_URL)
CELERY_TASK_ALWAYS_EAGER = env_bool("CELERY_TASK_ALWAYS_EAGER", False)
# A message is acknowledged after its batch ran; each worker process takes one batch at a time
# (ML batches are long, so prefetching would only starve the other workers).
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_BROKER_POOL_LIMIT = env_int("CELERY_BROKER_POOL_LIMIT", 10)
# The server-less broker: test pooled database connections before use, so one that died with a
# server restart is replaced instead of failing the next send (see workers/jobs/broker.py).
if CELERY_BROKER_URL.startswith(("sqla+", "sqlalchemy+")):
    CELERY_BROKER_TRANSPORT_OPTIONS = {"pool_pre_ping": True}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

# --- Jobs -------------------------------------------------------------------------------------
# Artworks per batch (one Celery task each); a stage may set its own.
JOB_BATCH_SIZE = env_int("JOB_BATCH_SIZE", 256)
# A worker holds a batch for this long and renews the lease every third of it while working; a
# batch whose lease ran out (its worker died) is re-sent by the next recovery pass.
JOB_LEASE_SECONDS = env_int("JOB_LEASE_SECONDS", 120)
# How often each worker looks for lost batches (also once at worker start).
JOB_RECOVER_SECONDS = env_int("JOB_RECOVER_SECONDS", 60)
# A running job with no progress for this long gets its pending batches re-sent (lost messages).
JOB_STALE_SECONDS = env_int("JOB_STALE_SECONDS", 900)
# A job with work left whose batches nobody has touched for this long is shown as "waiting for a
# worker" (no worker consumes its queue, or they cannot reach the broker) instead of an ETA.
JOB_WAITING_SECONDS = env_int("JOB_WAITING_SECONDS", 30)
# Threads that decode and preprocess images while the model runs (0: CPU count).
EMBED_DECODE_THREADS = env_int("EMBED_DECODE_THREADS", 0)
# On a public store that is not a local folder (object storage), at least this many threads read
# (and decode) images, so the network's latency per GET is overlapped.
EMBED_READ_THREADS = env_int("EMBED_READ_THREADS", 32)
# Images per forward pass inside a batch (0: 64 on CPU, 256 on CUDA).
EMBED_MICRO_BATCH = env_int("EMBED_MICRO_BATCH", 0)
# On CUDA, decode the JPEG derivatives and preprocess them on the GPU (nvJPEG, antialiased
# resize) instead of in CPU threads; off: the CPU path everywhere.
EMBED_GPU_DECODE = env_bool("EMBED_GPU_DECODE", True)
# A first embedding of at least this many artworks loads the vectors first and builds the HNSW
# index after the load.
EMBED_INDEX_AFTER_LOAD = env_int("EMBED_INDEX_AFTER_LOAD", 20_000)

# --- Colour palettes (docs/discovery.md) -----------------------------------------------------------
# Start a palette job (artworks without a palette) when an import job that ingested images ends.
PALETTES_AFTER_IMPORT = env_bool("PALETTES_AFTER_IMPORT", True)
# Write the stored kNN graph (the path's neighbour lists) of newly embedded works when an embed job ends.
NEIGHBOURS_AFTER_EMBED = env_bool("NEIGHBOURS_AFTER_EMBED", True)
# The largest kNN graph whose landmark distances one worker computes (memory ~1.5 GB a million works).
PATH_LANDMARKS_MAX_WORKS = env_int("PATH_LANDMARKS_MAX_WORKS", 4_000_000)

# --- Text in images (docs/ocr.md) ------------------------------------------------------------------
# Start an OCR job (artworks without text read) when an import job that ingested images ends: off
# by default, since most paintings hold no text; turn it on for posters, prints, letters, maps.
OCR_AFTER_IMPORT = env_bool("OCR_AFTER_IMPORT", False)
# Tesseract's languages ("eng", "eng+deu+fra": each needs its tesseract-ocr-<lang> package).
OCR_LANGUAGES = os.environ.get("OCR_LANGUAGES", "eng")
# Words below this confidence (Tesseract's 0-100) are dropped.
OCR_MIN_CONFIDENCE = env_float("OCR_MIN_CONFIDENCE", 70.0)
# Where the original is larger than the 1024 px derivative, its lettering that is lower than this
# many pixels in the derivative (too small to read there) is read from the original, reduced to
# at most OCR_ORIGINAL_SIDE pixels a side.
OCR_SMALL_TEXT_PX = env_int("OCR_SMALL_TEXT_PX", 12)
OCR_ORIGINAL_SIDE = env_int("OCR_ORIGINAL_SIDE", 3000)
# Weight of the text-in-image ranking in search's rank fusion (metadata and meaning weigh 1).
OCR_SEARCH_WEIGHT = env_float("OCR_SEARCH_WEIGHT", 0.5)

# --- Labels (docs/labels.md) --------------------------------------------------------------------
# Labels stored per artwork and model, and artworks per label-job batch.
LABEL_TOP_K = env_int("LABEL_TOP_K", 20)
LABEL_BATCH_SIZE = env_int("LABEL_BATCH_SIZE", 2000)
# One global cosine threshold for every label (unset: each label's derived threshold).
LABEL_THRESHOLD = env_float("LABEL_THRESHOLD", None)
# Percentile of a label's scores over the archive that derives its threshold, and how many
# artwork embeddings are sampled for those statistics.
LABEL_THRESHOLD_PERCENTILE = env_float("LABEL_THRESHOLD_PERCENTILE", 95.0)
LABEL_STATS_SAMPLE = env_int("LABEL_STATS_SAMPLE", 10_000)

# --- Faces and the doppelganger page (docs/faces.md) ---------------------------------------------
# The registered face model the stage stores and the page matches against.
FACE_MODEL = os.environ.get("FACE_MODEL", "dlib-resnet-v1")
# The stage's detector (mtcnn, hog, cnn or hog+mtcnn: HOG's faces plus MTCNN's others), the
# derivative it searches and HOG's/CNN's upsampling (chosen on the painted-faces test set, docs/faces.md).
FACE_DETECTOR = os.environ.get("FACE_DETECTOR", "mtcnn")
FACE_DERIVATIVE_SIZE = env_int("FACE_DERIVATIVE_SIZE", 1024)
FACE_UPSAMPLE = env_int("FACE_UPSAMPLE", 1)
# MTCNN's final score threshold, whether it searches the mirror image too, and its three stages'
# thresholds ("P,R,O": the first two filter candidates, the third is the lowest score kept) (mtcnn, hog+mtcnn).
FACE_MTCNN_THRESHOLD = env_float("FACE_MTCNN_THRESHOLD", 0.85)
FACE_MTCNN_MIRROR = env_bool("FACE_MTCNN_MIRROR", True)
FACE_MTCNN_STAGE_THRESHOLDS = os.environ.get("FACE_MTCNN_STAGE_THRESHOLDS", "0.4,0.5,0.5")
# Faces lower than this many pixels in the derivative searched are not kept, whatever the detector
# (a face that small gives no usable descriptor; 0 keeps every box).
FACE_MIN_HEIGHT = env_int("FACE_MIN_HEIGHT", 20)
# Folder of dlib's .dat model files (empty: the face_recognition_models package's).
FACE_MODELS_DIR = os.environ.get("FACE_MODELS_DIR", "")
# What computes dlib's 128-d descriptors: "torch" (the same network and weights through PyTorch,
# workers/ml/dlib_resnet.py, ~1/7 of the CPU) or "dlib" (dlib's own CPU code).
FACE_EMBEDDER = os.environ.get("FACE_EMBEDDER", "torch")
# The public page's own detector, and the largest photo (bytes, declared pixels) it accepts.
DOPPELGANGER_DETECTOR = os.environ.get("DOPPELGANGER_DETECTOR", "hog")
DOPPELGANGER_MAX_BYTES = env_int("DOPPELGANGER_MAX_BYTES", 8 * 1024 * 1024)
DOPPELGANGER_MAX_PIXELS = env_int("DOPPELGANGER_MAX_PIXELS", 40_000_000)
# The live mirror (explorer/doppelganger/live.py): frames per client (one or more comma-separated
# rates, all of which must allow a frame), the largest frame, and the kiosk's idle reset.
DOPPELGANGER_LIVE_RATE = os.environ.get("DOPPELGANGER_LIVE_RATE", "8/second,400/minute")
DOPPELGANGER_LIVE_MAX_BYTES = env_int("DOPPELGANGER_LIVE_MAX_BYTES", 256 * 1024)
DOPPELGANGER_KIOSK_IDLE_SECONDS = env_int("DOPPELGANGER_KIOSK_IDLE_SECONDS", 10)

# --- Client identity and login throttling (explorer.client_ip, explorer.login_throttle) --------
# Reverse proxies in front of the server whose X-Forwarded-For entries are trusted (0: the header
# is ignored and the socket's address is the client).
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", 0)
# Failed sign-ins allowed per client address, and per user name, within LOGIN_LOCKOUT_SECONDS;
# past either, sign-ins are refused until the window has passed.
LOGIN_FAILURE_LIMIT = env_int("LOGIN_FAILURE_LIMIT", 5)
LOGIN_USER_FAILURE_LIMIT = env_int("LOGIN_USER_FAILURE_LIMIT", 20)
LOGIN_LOCKOUT_SECONDS = env_int("LOGIN_LOCKOUT_SECONDS", 900)
AUTHENTICATION_BACKENDS = ["explorer.login_throttle.ThrottledModelBackend"]

# --- REST framework ---------------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "PAGE_SIZE": 50,
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticatedOrReadOnly"],
    # DRF's anonymous throttle with the client identity of explorer.client_ip (TRUSTED_PROXY_COUNT).
    "DEFAULT_THROTTLE_CLASSES": ["explorer.throttles.AnonThrottle"],
    "DEFAULT_THROTTLE_RATES": {
        "anon": os.environ.get("API_ANON_RATE", "600/minute"),
        "doppelganger": os.environ.get("DOPPELGANGER_RATE", "20/minute"),
        # Search (page and API share one budget per client), and search by image.
        "search": os.environ.get("SEARCH_RATE", "120/minute"),
        "image_search": os.environ.get("IMAGE_SEARCH_RATE", "20/minute"),
    },
    "DEFAULT_PAGINATION_CLASS": "explorer.api.pagination.Pagination",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Museum archive explorer API",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
}
# Rate limits and small caches. Per process by default; set CACHE_URL=redis://... to share them.
CACHE_URL = os.environ.get("CACHE_URL", "")
CACHES = {
    "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": CACHE_URL}
    if CACHE_URL
    else {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
# Seconds the home page's figures and the search filter options are cached (explorer.stats).
EXPLORER_STATS_SECONDS = env_int("EXPLORER_STATS_SECONDS", 300)
# kNN: HNSW candidate list for similar artworks and search (recall@10 0.97 at 64 in bench/browse.py),
# and the size up to which a filtered set is ranked exactly (explorer.similar.nearest_in).
EXPLORER_EF_SEARCH = env_int("EXPLORER_EF_SEARCH", 128)
EXPLORER_EXACT_KNN_LIMIT = env_int("EXPLORER_EXACT_KNN_LIMIT", 15_000)
EXPLORER_MAX_SCAN_TUPLES = env_int("EXPLORER_MAX_SCAN_TUPLES", 100_000)
VECTOR_TWO_PHASE_ABOVE = env_int("VECTOR_TWO_PHASE_ABOVE", 10_000_000)
VECTOR_RERANK_CANDIDATES = env_int("VECTOR_RERANK_CANDIDATES", 200)
# A partial HNSW index per institution holding at least this many of a model's works and at most
# this share of them (archive.filter_indexes; docs/perf/vectors.md for where the limits come from).
VECTOR_FILTER_INDEX_MIN = env_int("VECTOR_FILTER_INDEX_MIN", 1_000)
VECTOR_FILTER_INDEX_MAX_SHARE = env_float("VECTOR_FILTER_INDEX_MAX_SHARE", 0.25)
# Colour search: partial HNSW indexes on the palette signatures per bucket of a filter (kinds:
# period, classification, institution), for buckets of at least PALETTE_FILTER_INDEX_MIN palettes
# and at most PALETTE_FILTER_INDEX_MAX_SHARE of them; a period is PALETTE_PERIOD_YEARS wide
# (archive.palette_indexes; docs/perf/discovery.md).
PALETTE_FILTER_INDEXES = env_list("PALETTE_FILTER_INDEXES", "period,classification")
PALETTE_FILTER_INDEX_MIN = env_int("PALETTE_FILTER_INDEX_MIN", 5_000)
PALETTE_FILTER_INDEX_MAX_SHARE = env_float("PALETTE_FILTER_INDEX_MAX_SHARE", 0.5)
PALETTE_PERIOD_YEARS = env_int("PALETTE_PERIOD_YEARS", 100)
HALFVEC_MIGRATION_BATCH = env_int("HALFVEC_MIGRATION_BATCH", 20_000)  # migration 0016's rows per transaction
# Image uploads (search by image; the doppelganger page has its own DOPPELGANGER_MAX_BYTES/PIXELS):
# bytes of a request's files (kept in memory, never spooled to disk), declared pixels, and the memory
# a decode may need (explorer.uploads). All checked before anything is decoded.
UPLOAD_MAX_BYTES = env_int("UPLOAD_MAX_BYTES", 16 * 1024 * 1024)
UPLOAD_MAX_PIXELS = env_int("UPLOAD_MAX_PIXELS", 40_000_000)
UPLOAD_MAX_DECODE_BYTES = env_int("UPLOAD_MAX_DECODE_BYTES", 128 * 1024 * 1024)
# Serve MEDIA_ROOT from Django itself (demo and small installs; use a web server in production).
SERVE_MEDIA = env_bool("SERVE_MEDIA", True)

# --- Models -----------------------------------------------------------------------------------
# open_clip model name and pretrained tag (from the local Hugging Face cache) or a local weights
# file. CLIP_MODEL=test-tiny selects a tiny random-weights model for tests and trials (untrained).
CLIP_MODEL = os.environ.get("CLIP_MODEL", "ViT-B-32")
CLIP_PRETRAINED = os.environ.get("CLIP_PRETRAINED", "laion2b_s34b_b79k")
# "auto" picks CUDA when available, else CPU.
ML_DEVICE = os.environ.get("ML_DEVICE", "auto")

# --- Maps -------------------------------------------------------------------------------------
# Maps of up to this many points keep their fitted model; larger ones place new points by kNN.
MAP_MODEL_MAX_POINTS = env_int("MAP_MODEL_MAX_POINTS", 200_000)
