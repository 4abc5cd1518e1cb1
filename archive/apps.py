from django.apps import AppConfig


class ArchiveConfig(AppConfig):
    name = "archive"
    verbose_name = "Archive"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from archive import pgvector_version  # noqa: F401  (registers the pgvector system check)
