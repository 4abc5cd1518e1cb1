"""Migration 0024_classifier_classes keeps the positive / negative classifiers as they were."""
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("archive", "0023_artwork_text")]
AFTER = [("archive", "0024_classifier_classes")]


@pytest.mark.django_db(transaction=True)
def test_binary_classifiers_and_their_examples_survive_the_classes_migration():
    try:
        _migrate_through_the_classes_migration()
    finally:
        # Back to the latest schema: the tests after this one run on this database.
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())


def _migrate_through_the_classes_migration():
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    old = executor.loader.project_state(BEFORE).apps
    label = old.get_model("archive", "Label").objects.create(name="Old yes/no", slug="old-yes-no", group="trained")
    classifier = old.get_model("archive", "Classifier").objects.create(label=label, target_precision=0.8, seed=4)
    Artwork = old.get_model("archive", "Artwork")
    a, b = (Artwork.objects.create(source="t", source_id=str(i), title=f"Work {i}") for i in range(2))
    Example = old.get_model("archive", "ClassifierExample")
    Example.objects.create(classifier=classifier, artwork=a, positive=True)
    Example.objects.create(classifier=classifier, artwork=b, positive=False)
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(AFTER)
    from archive.models import Classifier, ClassifierExample

    migrated = Classifier.objects.get(pk=classifier.pk)
    assert not migrated.multiclass and migrated.target_precision == 0.8 and migrated.seed == 4
    assert set(ClassifierExample.objects.values_list("artwork_id", "positive", "klass_id")) == {(a.pk, True, None), (b.pk, False, None)}
