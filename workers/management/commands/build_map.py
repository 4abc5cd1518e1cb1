"""build_map [--method umap|tsne|both] [--subset all|faces|label:SLUG|collection:SLUG] [--rebuild] [--wait]

Without --rebuild, an existing map gets the newly embedded artworks placed on it (existing points
keep their coordinates); a map that does not exist yet, or was made with another model, is built.
--seed and --params default to the map's stored ones; giving different ones rebuilds the map.
--wait runs the job in this process with progress; otherwise it is queued for a "maps" worker.
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from archive.models import Job
from workers.layouts import build


class Command(BaseCommand):
    help = "Build or update the t-SNE/UMAP maps of the archive (a layout job)."

    def add_arguments(self, parser):
        parser.add_argument("--method", choices=["umap", "tsne", "both"], default="umap")
        parser.add_argument("--subset", default="all", help="all (default), faces, label:SLUG or collection:SLUG")
        parser.add_argument("--rebuild", action="store_true", help="refit from scratch instead of placing new points")
        parser.add_argument("--seed", type=int, default=None, help="random seed (default: the map's, 0 for a new map); a different one rebuilds")
        parser.add_argument("--params", default=None,
                            help='JSON of method parameters, e.g. {"n_neighbors": 30} (default: the map\'s); different ones rebuild')
        parser.add_argument("--wait", action="store_true", help="run now in this process instead of queueing")

    def handle(self, *args, **opts):
        try:
            subset = build.parse_subset(opts["subset"])
            params = json.loads(opts["params"]) if opts["params"] is not None else None
            if params is not None and not isinstance(params, dict):
                raise ValueError(f"--params must be a JSON object, got {opts['params']!r}")
        except (ValueError, json.JSONDecodeError) as exc:
            raise CommandError(str(exc)) from exc
        methods = ["umap", "tsne"] if opts["method"] == "both" else [opts["method"]]
        failed = []
        for method in methods:
            try:
                job = build.request(method, subset, seed=opts["seed"], params=params, rebuild=opts["rebuild"])
            except ValueError as exc:
                raise CommandError(str(exc)) from exc
            if not opts["wait"]:
                build.send(job)
                self.stdout.write(f"queued layout job #{job.pk} ({method}) on the maps queue; follow it with `jobs show {job.pk}`")
                continue
            self.stdout.write(f"layout job #{job.pk}: {method} map of {opts['subset']}")
            with tqdm(total=build.BUILD_STEPS, desc=f"{method} #{job.pk}", unit="step") as bar:

                def on_step(j, message, bar=bar):
                    bar.total = j.total or bar.total
                    bar.n = j.done
                    bar.set_postfix_str(message[:70])
                    bar.refresh()

                layout = build.run_job(job.pk, on_step=on_step)
            job.refresh_from_db()
            if job.state != Job.State.DONE:
                failed.append(f"{method}: {job.message}")
                continue
            self.stdout.write(self.style.SUCCESS(job.message))
            if layout is not None and layout.params.get("untrained"):
                self.stdout.write(self.style.WARNING("made from an UNTRAINED embedding model: the arrangement is not meaningful"))
            if layout is not None and layout.params.get("region_names_from") != "labels":
                self.stdout.write(f"region names come from {layout.params.get('region_names_from')} (no machine labels yet)")
        if failed:
            raise CommandError("; ".join(failed))
