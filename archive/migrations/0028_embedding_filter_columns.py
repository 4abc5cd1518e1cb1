"""The artwork's institution, classification (upper case) and duplicate flag on its embedding rows,
kept by triggers, so a partial HNSW index per common institution (archive.filter_indexes) can hold
that institution's works alone (searching within it walks only its own graph), and a search within
an institution and a classification checks them on the embedding row, without a look-up of the
artwork per candidate.

The columns and triggers come in one transaction (this migration); existing rows are copied by the
next one (0029_embedding_filter_columns_copy), in batches, each its own transaction, so an
interrupted copy is simply run again by the next ``migrate``; the triggers exist before the copy,
so rows written meanwhile are right. A row whose values change is a new row version: with the model's HNSW
index in place each copied row is also an index insertion (4.8 ms a row at 1M artworks on the
2-core development machine: about 80 minutes for a million rows, docs/database.md), which is why the copy
skips rows that already hold the artwork's values (a re-run, or works without an institution
and classification)."""
from django.db import migrations, models

TRIGGERS = """
CREATE OR REPLACE FUNCTION archive_embedding_take_artwork() RETURNS trigger AS $$
BEGIN
    SELECT a.institution, upper(a.classification), a.status = 'duplicate'
      INTO NEW.institution, NEW.classification, NEW.duplicate
      FROM archive_artwork a WHERE a.id = NEW.artwork_id;
    -- No such artwork (yet): the foreign key says so at commit; the columns stay valid meanwhile.
    NEW.institution := coalesce(NEW.institution, '');
    NEW.classification := coalesce(NEW.classification, '');
    NEW.duplicate := coalesce(NEW.duplicate, false);
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER archive_embedding_take_artwork
    BEFORE INSERT OR UPDATE OF artwork_id ON archive_artworkembedding
    FOR EACH ROW EXECUTE FUNCTION archive_embedding_take_artwork();

CREATE OR REPLACE FUNCTION archive_artwork_to_embeddings() RETURNS trigger AS $$
BEGIN
    UPDATE archive_artworkembedding SET institution = NEW.institution, classification = upper(NEW.classification),
           duplicate = NEW.status = 'duplicate'
     WHERE artwork_id = NEW.id;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER archive_artwork_to_embeddings
    AFTER UPDATE OF institution, classification, status ON archive_artwork
    FOR EACH ROW
    WHEN (OLD.institution IS DISTINCT FROM NEW.institution OR OLD.classification IS DISTINCT FROM NEW.classification
          OR (OLD.status = 'duplicate') IS DISTINCT FROM (NEW.status = 'duplicate'))
    EXECUTE FUNCTION archive_artwork_to_embeddings();
"""

DROP = """
DROP TRIGGER IF EXISTS archive_artwork_to_embeddings ON archive_artwork;
DROP FUNCTION IF EXISTS archive_artwork_to_embeddings();
DROP TRIGGER IF EXISTS archive_embedding_take_artwork ON archive_artworkembedding;
DROP FUNCTION IF EXISTS archive_embedding_take_artwork();
"""

class Migration(migrations.Migration):
    dependencies = [("archive", "0027_face_vectors_halfvec")]

    operations = [
        migrations.AddField("artworkembedding", "institution", models.CharField(
            max_length=255, blank=True, default="", editable=False)),
        migrations.AddField("artworkembedding", "classification", models.CharField(
            max_length=255, blank=True, default="", editable=False,
            help_text="the artwork's classification in upper case (the filter is case-insensitive)")),
        migrations.AddField("artworkembedding", "duplicate", models.BooleanField(
            default=False, editable=False, help_text="the artwork is an exact duplicate (hidden from search)")),
        migrations.RunSQL(TRIGGERS, DROP),
    ]
