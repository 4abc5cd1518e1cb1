"""Limit/offset pagination for every API list: ``limit`` 1..MAX_LIMIT (default 50), ``offset``
0..MAX_OFFSET; anything else is a 400 with a readable message (never a silent default, never a
database error). Deep offsets cost a scan of the skipped rows, hence the cap: narrow the list with
filters instead (or, for a label's artworks, follow its keyset ``next``)."""
from __future__ import annotations

from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination

MAX_LIMIT = 200
MAX_OFFSET = 100_000


def whole_number(raw: str, name: str, low: int, high: int) -> int:
    """``raw`` as an int in [low, high], else ValidationError({name: message})."""
    text = str(raw).strip()
    if not text.isascii() or not text.lstrip("-").isdigit() or len(text) > 12:
        raise ValidationError({name: f"must be a whole number from {low} to {high}, not {text[:30]!r}"})
    value = int(text)
    if not low <= value <= high:
        raise ValidationError({name: f"must be from {low} to {high}"})
    return value


class Pagination(LimitOffsetPagination):
    default_limit = 50
    max_limit = MAX_LIMIT
    max_offset = MAX_OFFSET

    def get_limit(self, request):
        raw = request.query_params.get(self.limit_query_param)
        if raw is None or raw == "":
            return self.default_limit
        return whole_number(raw, self.limit_query_param, 1, self.max_limit)

    def get_offset(self, request):
        raw = request.query_params.get(self.offset_query_param)
        if raw is None or raw == "":
            return 0
        return whole_number(raw, self.offset_query_param, 0, self.max_offset)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.limit_query_param:
                parameter["schema"].update({"minimum": 1, "maximum": self.max_limit, "default": self.default_limit})
            elif parameter["name"] == self.offset_query_param:
                parameter["schema"].update({"minimum": 0, "maximum": self.max_offset, "default": 0})
        return parameters
