from workers.management.commands._stage import StageCommand


class Command(StageCommand):
    help = "Detect faces and compute face descriptors for artwork images."
    kind = "faces"
