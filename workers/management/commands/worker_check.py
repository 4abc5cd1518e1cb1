from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Check that a Celery worker consumes a queue: one ping task round trip through the broker."

    def add_arguments(self, parser):
        parser.add_argument("--queue", default="embed")
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args, **options):
        from django.conf import settings

        from workers.jobs.probe import round_trip

        broker = settings.CELERY_BROKER_URL.split("://", 1)[0]
        try:
            seconds = round_trip(options["queue"], options["timeout"])
        except TimeoutError as exc:
            raise CommandError(f"{exc} (broker: {broker}). Start one with: ./run worker -Q {options['queue']}") from exc
        self.stdout.write(f"worker on queue {options['queue']!r} answered in {seconds:.2f}s (broker: {broker})")
