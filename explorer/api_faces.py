"""POST /api/v1/doppelganger/: the doppelganger look-up as JSON (same limits and rate limit as the page).

Every refusal is a 4xx JSON body ``{"error": code, "detail": message}``; the photo is handled in
memory only, exactly as on the page (see :mod:`explorer.doppelganger.service`).
"""
from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers as drf
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.views import APIView

from .doppelganger import failures, ratelimit, service, uploads
from .doppelganger.forms import LookupForm

class ErrorSerializer(drf.Serializer):
    error = drf.CharField(help_text="a stable code: rate_limited, too_large, not_an_image, no_face, ...")
    detail = drf.CharField(help_text="a message to show to people")


class FoundFaceSerializer(drf.Serializer):
    index = drf.IntegerField()
    box = drf.ListField(child=drf.IntegerField(), help_text="x, y, width, height in the uploaded photo's pixels (after EXIF orientation)")
    score = drf.FloatField(help_text="detector confidence")


class MatchArtworkSerializer(drf.Serializer):
    id = drf.IntegerField()
    title = drf.CharField()
    creator = drf.CharField()
    date = drf.CharField()
    url = drf.CharField()
    image_url = drf.CharField()


class MatchSerializer(drf.Serializer):
    face_id = drf.IntegerField()
    distance = drf.FloatField(help_text="Euclidean distance of the dlib descriptors (same person below ~0.6)")
    similarity = drf.IntegerField(help_text="percent: 100 * (1 - distance / 1.2), clipped to 0..100")
    crop_url = drf.CharField()
    box = drf.ListField(child=drf.IntegerField(), help_text="the face in the artwork's original pixels")
    artwork = MatchArtworkSerializer()


class DoppelgangerResultSerializer(drf.Serializer):
    width = drf.IntegerField()
    height = drf.IntegerField()
    faces = FoundFaceSerializer(many=True)
    chosen = drf.IntegerField(help_text="index of the face that was matched (the largest unless 'face' was given)")
    matches = MatchSerializer(many=True)


def _error(code: str, detail: str, status: int, **headers) -> Response:
    return Response({"error": code, "detail": detail}, status=status, headers=headers or None)


class DoppelgangerView(APIView):
    """Upload a photo (multipart field ``image``, or ``photo``) and optionally ``face`` (0-based index
    among the faces found, largest first); get the faces found and the nearest painted faces, one per artwork."""

    authentication_classes: list = []  # public, no session: no CSRF, nothing stored per visitor
    permission_classes = [AllowAny]
    throttle_classes: list = []  # explorer.doppelganger.ratelimit, shared with the page
    parser_classes = [MultiPartParser]

    @extend_schema(
        request={"multipart/form-data": inline_serializer("DoppelgangerUpload", {
            "image": drf.ImageField(), "face": drf.IntegerField(required=False, min_value=0)})},
        responses={200: DoppelgangerResultSerializer, 400: ErrorSerializer, 413: ErrorSerializer, 415: ErrorSerializer,
                   422: OpenApiResponse(ErrorSerializer, description="no face found"), 429: ErrorSerializer,
                   503: OpenApiResponse(ErrorSerializer, description="the collection cannot be searched right now")},
    )
    def post(self, request):
        try:
            return self._post(request)
        except Exception as exc:  # noqa: BLE001 - every failure is a JSON answer, never a 500 page
            failed = failures.as_rejection(exc)
            return _error(failed.code, failed.message, failed.status)

    def _post(self, request):
        wait = ratelimit.hit(request)
        if wait is not None:
            return _error("rate_limited", ratelimit.message(wait), 429, **{"Retry-After": str(wait)})
        if uploads.body_too_large(request):
            return _error("too_large", service.too_large_message(), 413)
        handler = uploads.install(request._request)
        try:
            form = LookupForm(request.data, request.FILES)
        except UnsupportedMediaType:
            return _error("unsupported_media_type", "Send the photo as multipart/form-data in the field 'image'.", 415)
        except ParseError as exc:
            return _error("bad_request", f"The upload could not be read: {exc.detail}", 400)
        if handler.too_large:
            return _error("too_large", service.too_large_message(), 413)
        if not form.is_valid():
            return _error("bad_request", "; ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items()), 400)
        upload = form.upload()
        if upload is None:
            return _error("no_image", "Upload a photo in the multipart field 'image'.", 400)
        result = service.lookup(upload.read(), form.cleaned_data.get("face"))  # refusals and failures: see post()
        return Response({
            "width": result.width,
            "height": result.height,
            "faces": [{"index": f.index, "box": list(f.box), "score": f.score} for f in result.faces],
            "chosen": result.chosen,
            "matches": [
                {
                    "face_id": m.face_id,
                    "distance": round(m.distance, 4),
                    "similarity": m.percent,
                    "crop_url": request.build_absolute_uri(m.crop_url) if m.crop_url else "",
                    "box": list(m.box),
                    "artwork": {"id": m.artwork_id, "title": m.title, "creator": m.creator, "date": m.display_date,
                                "url": request.build_absolute_uri(m.artwork_url),
                                "image_url": request.build_absolute_uri(m.image_url) if m.image_url else ""},
                }
                for m in result.matches
            ],
        })
