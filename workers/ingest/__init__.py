"""The import stage: import jobs planned into batches of records and run on the ingest workers.

:mod:`.launch` (start, run, import a location), :mod:`.plan` (the job's batch 0: the source
streamed into batches of records), :mod:`.batch` (one batch of records imported), :mod:`.stage`
(the Stage), :mod:`.retry` (failed items again), :mod:`.tasks` (Celery tasks that start imports).
The sources themselves and the upserts are the data app's: :mod:`archive.importers`.
"""
