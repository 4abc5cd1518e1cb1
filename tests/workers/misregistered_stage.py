"""A stage module that is wrong on purpose, for the registry check's tests: it claims the embed
kind (already claimed) on a queue that does not exist."""
from workers.jobs import BatchResult, Stage


def _process(ids, params):
    return BatchResult(done=list(ids))


STAGE = Stage(kind="embed", queue="no-such-queue", process=_process)
