"""Create the "curator" and "operator" groups (idempotent); optionally add users to them."""
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError

from explorer.permissions import CURATOR, OPERATOR


class Command(BaseCommand):
    help = 'Create the "curator" and "operator" groups. Staff users count as both.'

    def add_arguments(self, parser):
        parser.add_argument("--curator", action="append", default=[], metavar="USERNAME", help="add a user to curators")
        parser.add_argument("--operator", action="append", default=[], metavar="USERNAME", help="add a user to operators")

    def handle(self, *args, **options):
        groups = {}
        for name in (CURATOR, OPERATOR):
            groups[name], created = Group.objects.get_or_create(name=name)
            self.stdout.write(f"group {name}: {'created' if created else 'exists'}")
        User = get_user_model()
        for name, usernames in ((CURATOR, options["curator"]), (OPERATOR, options["operator"])):
            for username in usernames:
                try:
                    user = User.objects.get(username=username)
                except User.DoesNotExist:
                    raise CommandError(f"no user named {username!r}; create it first with ./run manage createsuperuser or the admin") from None
                user.groups.add(groups[name])
                self.stdout.write(f"{username} added to {name}")
