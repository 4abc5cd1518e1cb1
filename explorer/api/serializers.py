from __future__ import annotations

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from archive.models import Artwork, Collection, Face, Label
from explorer import record


class ArtworkSummarySerializer(serializers.ModelSerializer):
    thumbnail_url = serializers.CharField(read_only=True)
    image_url = serializers.CharField(source="derivative_url_1024", read_only=True)
    page_url = serializers.SerializerMethodField()

    class Meta:
        model = Artwork
        fields = ["id", "title", "creator", "display_date", "year_start", "year_end", "classification", "institution",
                  "thumbnail_url", "image_url", "page_url"]

    def get_page_url(self, obj) -> str:
        return f"/artworks/{obj.pk}/"


class ScoredArtworkSerializer(serializers.Serializer):
    artwork = ArtworkSummarySerializer()
    score = serializers.FloatField(allow_null=True)


class ImageMatchSerializer(ScoredArtworkSerializer):
    copy = serializers.BooleanField(help_text="the upload is a near copy of this artwork (crop, mirror, recolouring)")


class ShownLabelSerializer(serializers.Serializer):
    id = serializers.IntegerField(source="label.pk")
    slug = serializers.CharField(source="label.slug")
    name = serializers.CharField(source="label.name")
    group = serializers.CharField(source="label.group")
    score = serializers.FloatField(allow_null=True)
    decision = serializers.CharField(help_text='"" (machine label), accepted, added, or rejected (curators only)')
    notation = serializers.CharField(source="label.notation", help_text='Iconclass notation of the label ("" if none)')
    iconclass_uri = serializers.CharField(source="label.iconclass_uri", help_text='https://iconclass.org/<notation> ("" if none)')


class FaceSerializer(serializers.ModelSerializer):
    class Meta:
        model = Face
        fields = ["id", "model", "x", "y", "w", "h", "score"]


class MapPositionSerializer(serializers.Serializer):
    layout = serializers.CharField(help_text="the map's slug")
    name = serializers.CharField()
    x = serializers.FloatField()
    y = serializers.FloatField()
    url = serializers.CharField(help_text="the map page centred on this artwork")


class ArtworkDetailSerializer(serializers.ModelSerializer):
    thumbnail_url = serializers.CharField(read_only=True)
    image_url = serializers.CharField(source="derivative_url_1024", read_only=True)
    labels = serializers.SerializerMethodField()
    faces = serializers.SerializerMethodField()
    similar = serializers.SerializerMethodField()
    on_map = serializers.SerializerMethodField()
    accession_number = serializers.SerializerMethodField()
    department = serializers.SerializerMethodField()
    provenance = serializers.SerializerMethodField()
    catalogue = serializers.SerializerMethodField()
    record_sources = serializers.SerializerMethodField()
    palette = serializers.SerializerMethodField()

    class Meta:
        model = Artwork
        fields = ["id", "source", "source_id", "title", "creator", "display_date", "year_start", "year_end", "medium",
                  "classification", "institution", "rights", "rights_url", "credit_line", "source_url",
                  "accession_number", "department", "provenance", "catalogue", "metadata", "record_sources",
                  "iiif_manifest_url", "iiif_image_service", "width", "height", "status", "duplicate_of", "thumbnail_url",
                  "image_url", "labels", "faces", "similar", "on_map", "palette"]

    def _fact(self, obj, key) -> str:
        return next((f["text"] for f in record.catalogue_facts(obj) if f["key"] == key), "")

    def get_accession_number(self, obj) -> str:
        return self._fact(obj, "accession_number")

    def get_department(self, obj) -> str:
        return self._fact(obj, "department")

    def get_provenance(self, obj) -> str:
        return self._fact(obj, "provenance")

    @extend_schema_field(serializers.ListField(child=serializers.DictField()))
    def get_catalogue(self, obj):
        """The museum fields kept in metadata, as label and text (accession number, department, ...)."""
        return record.catalogue_facts(obj)

    @extend_schema_field(serializers.DictField())
    def get_record_sources(self, obj):
        """Where the record came from: its import, the records that enriched it, each field's source, why it is a duplicate."""
        return record.record_sources(obj)

    @extend_schema_field(ShownLabelSerializer(many=True))
    def get_labels(self, obj):
        return ShownLabelSerializer(self.context.get("labels", []), many=True).data

    @extend_schema_field(FaceSerializer(many=True))
    def get_faces(self, obj):
        return FaceSerializer(obj.faces.filter(not_a_face=False).order_by("x"), many=True).data

    @extend_schema_field(ScoredArtworkSerializer(many=True))
    def get_similar(self, obj):
        return [{"artwork": ArtworkSummarySerializer(a).data, "score": s} for a, s in self.context.get("similar", [])]

    @extend_schema_field(serializers.ListField(child=serializers.DictField(), help_text=(
        'dominant colours, largest first: [{"hex": "#rrggbb", "lab": [L, a, b], "share": 0.4}]')))
    def get_palette(self, obj):
        from explorer.colours import palette_of

        return palette_of(obj)

    @extend_schema_field(MapPositionSerializer(many=True))
    def get_on_map(self, obj):
        from explorer.on_map import positions

        return MapPositionSerializer(positions(obj.pk), many=True).data


class LabelSerializer(serializers.ModelSerializer):
    count = serializers.SerializerMethodField()
    iconclass_uri = serializers.CharField(read_only=True, help_text='https://iconclass.org/<notation> ("" without a notation)')
    parent = serializers.SlugRelatedField(slug_field="slug", read_only=True, help_text="slug of the broader Iconclass subject (iconclass group)")

    class Meta:
        model = Label
        fields = ["id", "slug", "name", "group", "prompt", "description", "source", "threshold", "published", "count",
                  "notation", "iconclass_uri", "parent"]
        read_only_fields = ["id", "slug", "published", "source", "count", "notation", "iconclass_uri", "parent"]

    def get_count(self, obj) -> int:
        return self.context.get("counts", {}).get(obj.pk, 0)


class PromptLabelSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    prompt = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    group = serializers.CharField(max_length=50, required=False, default="curated")


class PublishSerializer(serializers.Serializer):
    threshold = serializers.FloatField(required=False, allow_null=True)
    exclude = serializers.ListField(child=serializers.IntegerField(min_value=1), required=False, default=list)


class DecisionSerializer(serializers.Serializer):
    artwork = serializers.IntegerField(min_value=1)
    label = serializers.IntegerField(min_value=1)
    decision = serializers.ChoiceField(choices=["accepted", "rejected", "added", "clear"])


class CollectionSerializer(serializers.ModelSerializer):
    owner = serializers.CharField(source="owner.username", read_only=True, default=None)
    artworks = serializers.ListField(
        child=serializers.IntegerField(min_value=1), write_only=True, required=False, max_length=5000,
        help_text="artwork ids to add (appended, in order)",
    )
    items = serializers.SerializerMethodField()
    item_count = serializers.SerializerMethodField()

    class Meta:
        model = Collection
        fields = ["id", "slug", "title", "description", "is_public", "owner", "created_at", "updated_at",
                  "artworks", "items", "item_count"]
        read_only_fields = ["id", "slug", "owner", "created_at", "updated_at"]

    def get_items(self, obj) -> list[int]:
        return list(obj.items.order_by("position", "id").values_list("artwork_id", flat=True))

    def get_item_count(self, obj) -> int:
        return obj.items.count()


class JobSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    kind = serializers.CharField()
    kind_display = serializers.CharField()
    state = serializers.CharField()
    params = serializers.JSONField()
    total = serializers.IntegerField()
    done = serializers.IntegerField()
    failed = serializers.IntegerField()
    percent = serializers.FloatField()
    rate = serializers.FloatField()
    eta_seconds = serializers.IntegerField(allow_null=True)
    waiting = serializers.BooleanField(help_text="Work is left and no worker has moved it for JOB_WAITING_SECONDS: no ETA")
    elapsed_seconds = serializers.FloatField()
    message = serializers.CharField()
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.CharField(allow_null=True)
    started_at = serializers.CharField(allow_null=True)
    finished_at = serializers.CharField(allow_null=True)
    heartbeat_at = serializers.CharField(allow_null=True)
    is_final = serializers.BooleanField()
    error_count = serializers.IntegerField()


class PublishedLabelSerializer(LabelSerializer):
    """A label just published, with the job scoring it over the archive (null: nothing embedded yet)."""

    job = serializers.SerializerMethodField()

    class Meta(LabelSerializer.Meta):
        fields = LabelSerializer.Meta.fields + ["job"]

    @extend_schema_field(JobSerializer(allow_null=True))
    def get_job(self, obj):
        from ..jobs import describe

        job = self.context.get("job")
        return describe(job) if job is not None else None


class JobLaunchSerializer(serializers.Serializer):
    kind = serializers.ChoiceField(choices=["import", "embed", "label", "faces", "layout"])
    mode = serializers.ChoiceField(choices=["missing", "all", "reset"], default="missing")
    params = serializers.JSONField(required=False, default=dict)

    def validate_params(self, value):
        if not isinstance(value, dict):
            raise serializers.ValidationError("params must be a JSON object")
        return value


class JobErrorSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    item = serializers.CharField()
    reason = serializers.CharField()
    detail = serializers.CharField()
    artwork = serializers.IntegerField(source="artwork_id", allow_null=True)
    retried_in = serializers.IntegerField(source="retried_in_id", allow_null=True)
    created_at = serializers.DateTimeField()


class ModelInfoSerializer(serializers.Serializer):
    key = serializers.CharField()
    untrained = serializers.BooleanField()
    dim = serializers.IntegerField()


class InstitutionCountSerializer(serializers.Serializer):
    institution = serializers.CharField()
    n = serializers.IntegerField(help_text="artworks")


class LabelCountSerializer(serializers.Serializer):
    slug = serializers.CharField()
    name = serializers.CharField()
    count = serializers.IntegerField()


class LabelGroupSerializer(serializers.Serializer):
    group = serializers.CharField()
    label_count = serializers.IntegerField(help_text="labels of this group shown on at least one artwork")
    labels = LabelCountSerializer(many=True, help_text="its largest labels")


class ArchiveStatsSerializer(serializers.Serializer):
    artworks = serializers.IntegerField()
    images = serializers.IntegerField(help_text="artworks with an ingested image")
    faces = serializers.IntegerField(help_text="painted faces found")
    labels = serializers.IntegerField(help_text="published labels")
    institutions = InstitutionCountSerializer(many=True, help_text="the largest institutions")
    groups = LabelGroupSerializer(many=True)
    has_map = serializers.BooleanField()
    model = ModelInfoSerializer(allow_null=True)
