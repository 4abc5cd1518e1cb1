from django.apps import AppConfig


class WorkersConfig(AppConfig):
    name = "workers"
    verbose_name = "Workers"

    def ready(self) -> None:
        from django.core import checks

        from workers.jobs.checks import check_registry

        checks.register(check_registry)
