"""The artwork's filter columns on its palette rows, kept by triggers, so a colour search within
years, a classification or an institution checks them inside the palette index scan."""
from django.db import migrations, models

TRIGGERS = """
CREATE OR REPLACE FUNCTION archive_palette_take_artwork() RETURNS trigger AS $$
BEGIN
    SELECT a.year_start, a.year_end, upper(a.classification), a.institution, a.status = 'duplicate'
      INTO NEW.year_start, NEW.year_end, NEW.classification, NEW.institution, NEW.duplicate
      FROM archive_artwork a WHERE a.id = NEW.artwork_id;
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER archive_palette_take_artwork
    BEFORE INSERT OR UPDATE OF artwork_id ON archive_artworkpalette
    FOR EACH ROW EXECUTE FUNCTION archive_palette_take_artwork();

CREATE OR REPLACE FUNCTION archive_artwork_to_palettes() RETURNS trigger AS $$
BEGIN
    UPDATE archive_artworkpalette SET year_start = NEW.year_start, year_end = NEW.year_end,
           classification = upper(NEW.classification), institution = NEW.institution,
           duplicate = NEW.status = 'duplicate'
     WHERE artwork_id = NEW.id;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

CREATE TRIGGER archive_artwork_to_palettes
    AFTER UPDATE OF year_start, year_end, classification, institution, status ON archive_artwork
    FOR EACH ROW
    WHEN (OLD.year_start IS DISTINCT FROM NEW.year_start OR OLD.year_end IS DISTINCT FROM NEW.year_end
          OR OLD.classification IS DISTINCT FROM NEW.classification OR OLD.institution IS DISTINCT FROM NEW.institution
          OR (OLD.status = 'duplicate') IS DISTINCT FROM (NEW.status = 'duplicate'))
    EXECUTE FUNCTION archive_artwork_to_palettes();

UPDATE archive_artworkpalette p SET year_start = a.year_start, year_end = a.year_end,
       classification = upper(a.classification), institution = a.institution, duplicate = a.status = 'duplicate'
  FROM archive_artwork a WHERE a.id = p.artwork_id;
"""

# Years as a range (a GiST index on it): a window of years is two-sided in the index, where a
# b-tree on year_start alone scans every earlier year (year_end is what bounds the start).
YEARS_INDEX = """
CREATE INDEX palette_years_range ON archive_artworkpalette USING gist (
    int4range(LEAST(year_start, COALESCE(year_end, year_start)), GREATEST(year_start, COALESCE(year_end, year_start)), '[]'));
"""

DROP = """
DROP TRIGGER IF EXISTS archive_artwork_to_palettes ON archive_artwork;
DROP FUNCTION IF EXISTS archive_artwork_to_palettes();
DROP TRIGGER IF EXISTS archive_palette_take_artwork ON archive_artworkpalette;
DROP FUNCTION IF EXISTS archive_palette_take_artwork();
"""


class Migration(migrations.Migration):
    dependencies = [("archive", "0025_artwork_neighbours_graph")]

    operations = [
        migrations.AddField("artworkpalette", "year_start", models.IntegerField(null=True, editable=False)),
        migrations.AddField("artworkpalette", "year_end", models.IntegerField(null=True, editable=False)),
        migrations.AddField("artworkpalette", "classification", models.CharField(
            max_length=255, blank=True, default="", editable=False,
            help_text="the artwork's classification in upper case (the filter is case-insensitive)")),
        migrations.AddField("artworkpalette", "institution", models.CharField(max_length=255, blank=True, default="", editable=False)),
        migrations.AddField("artworkpalette", "duplicate", models.BooleanField(
            default=False, editable=False, help_text="the artwork is an exact duplicate (hidden from search)")),
        migrations.RunSQL(TRIGGERS, DROP),
        migrations.RunSQL(YEARS_INDEX, "DROP INDEX IF EXISTS palette_years_range"),
        migrations.AddIndex("artworkpalette", models.Index(fields=["method", "classification", "year_start"], name="palette_method_class_years")),
        migrations.AddIndex("artworkpalette", models.Index(fields=["method", "institution", "year_start"], name="palette_method_inst_years")),
    ]
