"""Friendly error responses for the pages: the site's error templates with a readable message."""
from __future__ import annotations

from django.shortcuts import render


def bad_request(request, message: str, *, status: int = 400):
    """The 400 page (``templates/400.html``) saying what was wrong with the request."""
    return render(request, "400.html", {"message": message}, status=status)
