import pytest
from django.core.management import call_command

from archive import pgvector_version


def test_problem_names_the_version_needed():
    assert "pgvector >= 0.8.0" in pgvector_version.problem("0.6.2", "0.6.2")
    assert "0.6.2" in pgvector_version.problem("0.6.2", "0.6.2")
    assert "no pgvector" in pgvector_version.problem(None, None)
    assert "run migrate" in pgvector_version.problem("0.6.2", "0.8.2")
    assert pgvector_version.problem("0.8.2", "0.8.2") is None
    assert pgvector_version.problem(None, "0.8.0") is None
    assert pgvector_version.parse("0.10.1") > pgvector_version.parse("0.8.2")


@pytest.mark.django_db
def test_the_test_database_passes_the_check():
    installed, _ = pgvector_version.versions(__import__("django.db").db.connection)
    assert pgvector_version.parse(installed) >= pgvector_version.REQUIRED
    assert pgvector_version.check_pgvector(databases=["default"]) == []
    call_command("check", "--database", "default")
