"""/api/v1/classifiers/: curator-trained classifiers (create, add examples, train, metrics, apply).
Curators only."""
from __future__ import annotations

from django.shortcuts import get_object_or_404
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response

from archive.models import Classifier
from workers.classifiers import curating

from .. import classifiers as work, jobs as job_control
from ..permissions import IsCurator
from .serializers import JobSerializer


class ClassifierCreateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=255)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    target_precision = serializers.FloatField(required=False, default=0.9, min_value=0.01, max_value=1.0)
    seed = serializers.IntegerField(required=False, default=0)
    classes = serializers.ListField(
        child=serializers.CharField(max_length=200), required=False, allow_empty=True, max_length=curating.MAX_CLASSES,
        help_text="two or more class names (e.g. [\"oil\", \"watercolour\", \"print\"]): a multi-class classifier, "
                  "each class its own label; omit for a positive / negative classifier",
    )


class VersionSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    number = serializers.IntegerField()
    state = serializers.ChoiceField(choices=["training", "ready", "failed"])
    message = serializers.CharField()
    model = serializers.CharField()
    untrained_model = serializers.BooleanField()
    seed = serializers.IntegerField()
    target_precision = serializers.FloatField()
    threshold = serializers.FloatField(allow_null=True)
    job = serializers.IntegerField(allow_null=True)
    created_at = serializers.CharField()
    multiclass = serializers.BooleanField()
    test_f1 = serializers.FloatField(allow_null=True, help_text="test-part F1 of the positive class (multi-class: macro F1)")
    thresholds = serializers.DictField(child=serializers.FloatField(), required=False, help_text="multi-class: per class")
    class_thresholds = serializers.ListField(child=serializers.ListField(), required=False,
                                             help_text="multi-class: [class name, threshold] in class order")


class VersionMetricsSerializer(VersionSerializer):
    metrics = serializers.JSONField(help_text="split, C, threshold, confusion (rows: true negative/positive), "
                                              "classes (precision/recall/F1/support), average_precision, pr_curve. "
                                              "Multi-class: class_names, confusion N x N (rows: true class, columns: most "
                                              "probable class, in class_names order), classes (also threshold and average "
                                              "precision each), thresholds, accuracy, chance_accuracy, macro_f1, "
                                              "mean_average_precision, labelled_share, labelled_accuracy, pr_curves (one per class)")


class ClassifierClassSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField(help_text="the class's label")
    label_id = serializers.IntegerField()
    key = serializers.IntegerField(help_text="its key on the review page")
    published = serializers.BooleanField()
    examples = serializers.IntegerField()


class ClassifierSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    slug = serializers.CharField()
    label_id = serializers.IntegerField()
    description = serializers.CharField()
    published = serializers.BooleanField()
    target_precision = serializers.FloatField()
    seed = serializers.IntegerField()
    multiclass = serializers.BooleanField()
    classes = ClassifierClassSerializer(many=True)
    examples = serializers.DictField(child=serializers.IntegerField(), help_text="positive / negative, or per class name")
    needed_per_class = serializers.IntegerField()
    ready_to_train = serializers.BooleanField()
    applied_version = VersionSerializer(allow_null=True)
    versions = VersionSerializer(many=True, required=False)
    created_by = serializers.CharField(allow_null=True)
    created_at = serializers.CharField()


class ExamplesSerializer(serializers.Serializer):
    artwork_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1), min_length=1, max_length=curating.MAX_EXAMPLES_PER_CALL,
        error_messages={"max_length": f"at most {curating.MAX_EXAMPLES_PER_CALL:,} artworks per request: select fewer "
                                      "(e.g. a smaller box or lasso) or send them in parts"},
    )
    positive = serializers.BooleanField(required=False, default=True, help_text="false: negative examples")
    remove = serializers.BooleanField(required=False, default=False, help_text="true: remove these examples instead")

    def get_fields(self):
        fields = super().get_fields()  # "class" is a Python keyword: declared here
        fields["class"] = serializers.CharField(required=False, allow_blank=False, max_length=200,
                                                help_text="multi-class: the class these artworks belong to (its name, id or #n)")
        return fields


class ExamplesResultSerializer(serializers.Serializer):
    added = serializers.IntegerField()
    changed = serializers.IntegerField()
    unchanged = serializers.IntegerField()
    removed = serializers.IntegerField()
    examples = serializers.DictField(child=serializers.IntegerField())


class TrainSerializer(serializers.Serializer):
    apply = serializers.BooleanField(required=False, default=False, help_text="apply the new version when it trains well")


class ApplySerializer(serializers.Serializer):
    version = serializers.IntegerField(required=False, allow_null=True, default=None,
                                       help_text="version number (default: the newest trained under the active model)")


class ClassifierViewSet(viewsets.ViewSet):
    """Classifiers curators teach by example; their label is applied to the whole archive."""

    permission_classes = [IsCurator]
    # For the schema (the id path parameter is an integer) and the URL pattern; the actions read their own rows.
    queryset = Classifier.objects.none()
    lookup_value_regex = r"\d+"

    def _get(self, pk) -> Classifier:
        return get_object_or_404(Classifier.objects.select_related("label", "applied_version__model", "created_by"), pk=pk)

    @extend_schema(responses=ClassifierSerializer(many=True))
    def list(self, request):
        rows = Classifier.objects.select_related("label", "applied_version__model", "created_by").order_by("label__name")
        return Response([work.describe(c, versions=False) for c in rows])

    @extend_schema(request=ClassifierCreateSerializer, responses=ClassifierSerializer)
    def create(self, request):
        form = ClassifierCreateSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            classifier = curating.create_classifier(**form.validated_data, user=request.user)
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(work.describe(classifier), status=status.HTTP_201_CREATED)

    @extend_schema(responses=ClassifierSerializer)
    def retrieve(self, request, pk=None):
        return Response(work.describe(self._get(pk)))

    @extend_schema(request=ExamplesSerializer, responses=ExamplesResultSerializer)
    @action(detail=True, methods=["post"])
    def examples(self, request, pk=None):
        """Add positive or negative examples (multi-class: examples of ``class``) from any list of
        artwork ids (search results, a label page, a collection, a map selection), or remove them."""
        classifier = self._get(pk)
        form = ExamplesSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        data = form.validated_data
        result = {"added": 0, "changed": 0, "unchanged": 0, "removed": 0}
        try:
            if data["remove"]:
                result["removed"] = curating.remove_examples(classifier, data["artwork_ids"])
            elif classifier.multiclass:
                try:
                    klass = curating.find_class(classifier, data.get("class"))
                except ValueError as exc:
                    raise ValidationError({"class": str(exc)}) from None
                result.update(curating.add_examples(classifier, data["artwork_ids"], klass=klass, user=request.user))
            elif "class" in data:
                raise ValidationError({"class": f"“{classifier.label.name}” has no classes: send positive true or false"})
            else:
                result.update(curating.add_examples(classifier, data["artwork_ids"], data["positive"], user=request.user))
        except ValueError as exc:
            raise ValidationError({"artwork_ids": str(exc)}) from None
        return Response({**result, "examples": curating.example_counts(classifier)})

    @extend_schema(request=TrainSerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def train(self, request, pk=None):
        """Start the training job (a new version on the active model's embeddings)."""
        form = TrainSerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            job = work.train(self._get(pk), apply=form.validated_data["apply"], user=request.user)
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(job_control.describe(job), status=status.HTTP_202_ACCEPTED)

    @extend_schema(parameters=[OpenApiParameter("version", int, description="version number (default: the newest)")],
                   responses=VersionMetricsSerializer)
    @action(detail=True)
    def metrics(self, request, pk=None):
        """A version's test-part figures: confusion matrix, precision/recall/F1, PR curve, threshold."""
        classifier = self._get(pk)
        versions = classifier.versions.select_related("model").order_by("-number")
        number = request.query_params.get("version")
        if number is not None:
            if not number.isdigit():
                raise ValidationError({"version": "a version number"})
            versions = versions.filter(number=int(number))
        version = versions.first()
        if version is None:
            raise ValidationError({"version": "no such version: train the classifier first"})
        return Response(work.describe_version(version, full=True))

    @extend_schema(request=ApplySerializer, responses={202: JobSerializer})
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        """Apply a version to the whole archive (an older version: roll back)."""
        form = ApplySerializer(data=request.data)
        form.is_valid(raise_exception=True)
        try:
            job = work.apply(self._get(pk), form.validated_data["version"], user=request.user)
        except ValueError as exc:
            raise ValidationError({"detail": str(exc)}) from None
        return Response(job_control.describe(job), status=status.HTTP_202_ACCEPTED)
