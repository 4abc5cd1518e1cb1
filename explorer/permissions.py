"""Who may do what: curators decide labels and keep collections; operators run jobs. Staff are both."""
from __future__ import annotations

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from rest_framework.permissions import SAFE_METHODS, BasePermission

CURATOR = "curator"
OPERATOR = "operator"


def in_group(user, group: str) -> bool:
    if not user or not user.is_authenticated:
        return False
    if user.is_staff or user.is_superuser:
        return True
    return user.groups.filter(name=group).exists()


def is_curator(user) -> bool:
    return in_group(user, CURATOR)


def is_operator(user) -> bool:
    return in_group(user, OPERATOR)


def _require(check):
    def decorator(view):
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not request.user.is_authenticated:
                return redirect_to_login(request.get_full_path())
            if not check(request.user):
                raise PermissionDenied
            return view(request, *args, **kwargs)

        return wrapped

    return decorator


curator_required = _require(is_curator)
operator_required = _require(is_operator)


class CuratorOrReadOnly(BasePermission):
    message = "Changing this needs a curator account."

    def has_permission(self, request, view):
        return request.method in SAFE_METHODS or is_curator(request.user)


class IsCurator(BasePermission):
    message = "This needs a curator account."

    def has_permission(self, request, view):
        return is_curator(request.user)


class IsOperator(BasePermission):
    message = "Jobs are for operators."

    def has_permission(self, request, view):
        return is_operator(request.user)
