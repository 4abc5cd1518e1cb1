from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, render

from archive.models import Artwork


def artwork_list(request):
    artworks = Artwork.objects.exclude(status=Artwork.Status.DUPLICATE).order_by("id")
    page = Paginator(artworks, 60).get_page(request.GET.get("page"))
    return render(request, "explorer/artwork_list.html", {"page": page, "total": artworks.count()})


def artwork_detail(request, pk: int):
    artwork = get_object_or_404(Artwork, pk=pk)
    return render(request, "explorer/artwork_detail.html", {"artwork": artwork})
