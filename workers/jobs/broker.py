"""The server-less default broker (kombu's SQLAlchemy transport on the project's PostgreSQL),
made to survive a database restart.

kombu's channel keeps one SQLAlchemy session for its life. When the server restarts, the first
statement fails with OperationalError and the session is left in a failed transaction; every
later send or receive then raises PendingRollbackError, which kombu does not count as a
connection error, so a worker's producer stays broken until the process is restarted. This
channel rolls the failed session back, drops the engine's dead connections and tries the
operation once more on a fresh session; if the server is still away, it raises OperationalError,
which kombu treats as a lost connection (it reconnects with back-off) and the job kernel treats
as "the batch stays pending" (recovery sends it later). :func:`install` makes the ``sqla://`` and
``sqlalchemy://`` URLs use it.
"""
from __future__ import annotations

import logging

from kombu.transport import TRANSPORT_ALIASES
from kombu.transport import sqlalchemy as kombu_sqla
from sqlalchemy.exc import DBAPIError, OperationalError, PendingRollbackError

log = logging.getLogger(__name__)
BROKEN = (OperationalError, PendingRollbackError, DBAPIError)


class Channel(kombu_sqla.Channel):
    def _reset(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            for step in (session.rollback, session.close):
                try:
                    step()
                except Exception:  # noqa: BLE001 - the session is being thrown away
                    pass
        engine, _ = self._engines.get(self.connection.client.hostname, (None, None))
        if engine is not None:
            engine.dispose()  # its pooled connections died with the server

    def _again(self, operation, *args):
        try:
            return operation(*args)
        except BROKEN as exc:
            if isinstance(exc, DBAPIError) and not isinstance(exc, OperationalError) and not exc.connection_invalidated:
                raise
            log.warning("broker database connection lost (%s); reconnecting", exc.__class__.__name__)
            self._reset()
        try:
            return operation(*args)
        except BROKEN as exc:
            self._reset()
            raise OperationalError(str(exc), None, exc) from exc

    def _new_queue(self, queue, **kwargs):
        return self._again(super()._new_queue, queue)

    def _put(self, queue, payload, **kwargs):
        return self._again(super()._put, queue, payload)

    def _get(self, queue):
        return self._again(super()._get, queue)

    def _size(self, queue):
        return self._again(super()._size, queue)

    def _purge(self, queue):
        return self._again(super()._purge, queue)


class Transport(kombu_sqla.Transport):
    Channel = Channel
    connection_errors = (OperationalError, PendingRollbackError)


def install() -> None:
    """Use the recovering transport for ``sqla+...://`` and ``sqlalchemy+...://`` broker URLs."""
    for alias in ("sqla", "sqlalchemy"):
        TRANSPORT_ALIASES[alias] = f"{__name__}:Transport"
