"""``./run demo [SOURCE]``: set up, ingest, run every pipeline stage on workers, serve the explorer.

Stages run in order; each prints its own progress bar. A stage that cannot run here (for instance
CLIP weights that are not on this machine) prints what to do and the demo carries on with what
it has, so the explorer always comes up on whatever was ingested.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import secrets
import signal
import sys
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def banner(text: str) -> None:
    print(f"\n\033[1m==> {text}\033[0m", flush=True)


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="./run demo", description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", help="a folder of images, a metadata file (CSV/JSON/JSONL) or a IIIF manifest (path or URL)")
    parser.add_argument("--mapping", help="metadata column mapping name (see archive/importers/mappings/)")
    parser.add_argument("--limit", type=int, help="import at most this many records")
    parser.add_argument("--model", help="embedding model key (default: CLIP_MODEL/CLIP_PRETRAINED; 'test-tiny' = untrained test model)")
    parser.add_argument("--api-count", type=int, default=300, help="works to fetch from a museum open API when no SOURCE is given")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--no-serve", action="store_true", help="run the pipeline and exit")
    parser.add_argument("--skip", action="append", default=[], choices=["embed", "label", "faces", "map"], help="skip a stage")
    return parser.parse_args(argv)


def demo_password_path() -> Path:
    """The file holding the demo curator's password for *this* database: one file per database
    (name, host and port), so pointing the demo at another DATABASE_URL never prints a password
    that belongs to a different database's curator."""
    from django.db import connection

    conf = connection.settings_dict
    ident = f"{conf.get('NAME')}|{conf.get('HOST') or ''}|{conf.get('PORT') or ''}"
    digest = hashlib.sha256(ident.encode()).hexdigest()[:12]
    return BASE_DIR / "var" / f"demo_curator_password.{digest}"


def ensure_demo_curator(login_url: str) -> None:
    """A curator+operator account for trying the workspace; its password is kept in var/, one file
    per database. A password file that does not open this database's account (the account was
    changed, or the file is from an older layout) is never printed as if it did."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group

    from museum.secret_files import read_secret, write_secret

    path = demo_password_path()
    User = get_user_model()
    user = User.objects.filter(username="curator").first()
    if user is None:
        password = secrets.token_urlsafe(12)
        user = User.objects.create_user("curator", password=password, is_staff=True)
        write_secret(path, password)  # mode 0600
    groups = Group.objects.filter(name__in=["curator", "operator"])
    user.groups.add(*groups)
    password = read_secret(path)  # an older world-readable file is tightened here
    if password and user.check_password(password):
        print(f"Curator login: curator / {password}  ({login_url})", flush=True)
    else:
        print("Curator login: the account 'curator' exists in this database but its password is not "
              f"kept here; set one with `./run manage changepassword curator` ({login_url})", flush=True)


def run_stage(name: str, *args, **options) -> bool:
    """Run a management command; report (not raise) a failure so later stages and the server still run."""
    from django.core.management import call_command
    from django.core.management.base import CommandError

    try:
        call_command(name, *args, **options)
        return True
    except CommandError as exc:
        print(f"\n{name}: {exc}", file=sys.stderr, flush=True)
    except KeyError as exc:  # command not available in this checkout
        print(f"\n{name}: not available ({exc})", file=sys.stderr, flush=True)
    return False


def main(argv: list[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "museum.settings")
    if args.model:
        os.environ["CLIP_MODEL"] = args.model if "/" not in args.model else args.model.split("/", 1)[0]
        if "/" in args.model:
            os.environ["CLIP_PRETRAINED"] = args.model.split("/", 1)[1]
    import django

    banner("Starting the embedded services and migrating the database")
    django.setup()
    from django.core.management import call_command

    from archive.models import Artwork

    call_command("migrate", interactive=False, verbosity=0)
    run_stage("create_roles")
    run_stage("load_vocabulary")
    ensure_demo_curator(f"http://{args.host}:{args.port}/accounts/login/")

    banner("Importing")
    if args.source:
        options = {"limit": args.limit} if args.limit else {}
        if args.mapping:
            options["mapping"] = args.mapping
        if not run_stage("import", args.source, **options) and not Artwork.objects.exists():
            return 1
    elif not run_stage("import", aic_api=args.api_count):
        if not Artwork.objects.exists():
            print(
                "No SOURCE given and the museum open API is not reachable from this machine.\n"
                "Run ./run demo SOURCE with a folder of images, a metadata CSV/JSON file or a IIIF manifest, e.g.\n"
                "  ./run demo ../shared/data/artworks/aic-artwall",
                file=sys.stderr,
            )
            return 2
        print("Continuing with the artworks already in the archive.", file=sys.stderr)

    # The workers run in their own sessions: turn SIGTERM/SIGHUP (a closed terminal, a process
    # manager) into a normal exit so the ``finally`` below stops them and the embedded database.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda signum, frame: sys.exit(128 + signum))
    workers = []
    try:
        from workers.process import start_workers

        banner("Starting Celery workers")
        workers = start_workers()
    except ImportError:
        print("Workers are not available in this checkout; skipping the ML stages.", file=sys.stderr)
        args.skip = ["embed", "label", "faces", "map"]

    try:
        embed_ok = "embed" in args.skip or run_stage("embed", wait=True, **({"model": args.model} if args.model else {}))
        if not embed_ok:
            print(
                "Embedding did not run, so labels, similarity search and the map are not available yet.\n"
                "To try them without real weights: ./run demo --model test-tiny SOURCE (results are marked untrained).",
                file=sys.stderr,
            )
        else:
            if "label" not in args.skip:
                banner("Labelling")
                run_stage("label", wait=True)
            if "map" not in args.skip:
                banner("Building the map")
                run_stage("build_map", wait=True)
        if "faces" not in args.skip:
            banner("Finding faces")
            run_stage("faces", wait=True)

        if args.no_serve:
            return 0
        banner(f"Serving the explorer on http://{args.host}:{args.port}/  (Ctrl-C to stop)")
        from museum.serve import serve

        serve(args.host, args.port)
    except KeyboardInterrupt:
        pass
    finally:
        if workers:
            from workers.process import stop_workers

            stop_workers(workers)
    return 0


if __name__ == "__main__":
    sys.exit(main())
