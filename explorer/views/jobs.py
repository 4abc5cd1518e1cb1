"""Operators' job dashboard: start jobs, watch progress (the page polls the JSON API), control them."""
from __future__ import annotations

import json

from django.contrib import messages
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from archive.models import Job

from workers.jobs import waiting

from .. import jobs as job_control
from ..permissions import operator_required


@operator_required
def job_list(request):
    if request.method == "POST":
        kind = request.POST.get("kind", "")
        params = {}
        if request.POST.get("source"):
            params["source"] = request.POST["source"].strip()
        if request.POST.get("mapping"):
            params["mapping"] = request.POST["mapping"].strip()
        if kind == "layout" and request.POST.get("method"):
            params["method"] = request.POST["method"]
        try:
            job = job_control.launch(kind, params, request.POST.get("mode", "missing"), request.user)
        except job_control.JobControlError as exc:
            messages.error(request, str(exc))
            return redirect("explorer:jobs")
        messages.success(request, f"Started {job}.")
        return redirect("explorer:job", pk=job.pk)
    page = Paginator(Job.objects.select_related("created_by").order_by("-created_at"), 25).get_page(request.GET.get("page"))
    for job in page:
        job.waiting = waiting(job)
    return render(request, "explorer/job_list.html", {"page": page, "kinds": job_control.kinds(), "modes": job_control.MODES})


@operator_required
def job_detail(request, pk: int):
    job = get_object_or_404(Job, pk=pk)
    errors = Paginator(job.errors.order_by("id"), 50).get_page(request.GET.get("page"))
    params = json.dumps(job.params, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return render(request, "explorer/job_detail.html", {"job": job, "info": job_control.describe(job), "errors": errors, "params": params})


@require_POST
@operator_required
def job_action(request, pk: int, action: str):
    job = get_object_or_404(Job, pk=pk)
    try:
        result = job_control.control(job, action, request.user)
    except job_control.JobControlError as exc:
        messages.error(request, str(exc))
        return redirect("explorer:job", pk=job.pk)
    if result.pk != job.pk:
        messages.success(request, f"Retrying the failed items as {result}.")
        return redirect("explorer:job", pk=result.pk)
    messages.success(request, f"Job #{job.pk} is now {result.get_state_display().lower()}.")
    return redirect("explorer:job", pk=job.pk)
