"""The explorer's HTML forms and query strings, validated by Django forms: lengths, numbers, and
no NUL characters (PostgreSQL cannot store them; Django's CharField refuses them). A form that
does not validate gives the visitor its messages with a 400, never a database error."""
from __future__ import annotations

from django import forms


def first_error(form: forms.Form) -> str:
    """The form's errors as one readable line: 'field: message; ...'."""
    parts = []
    for name, errors in form.errors.items():
        label = name if name != "__all__" else ""
        parts += [f"{label}: {e}" if label else str(e) for e in errors]
    return "; ".join(parts)


class YearField(forms.IntegerField):
    def __init__(self, **kwargs):
        super().__init__(
            required=False, min_value=-10000, max_value=3000,
            error_messages={"invalid": "must be a whole year such as 1850", "min_value": "must be between -10000 and 3000",
                            "max_value": "must be between -10000 and 3000"},
            **kwargs,
        )


class FilterForm(forms.Form):
    """The search filters (the search page, the search API and the artworks list)."""

    creator = forms.CharField(required=False, max_length=200)
    year_from = YearField()
    year_to = YearField()
    label = forms.CharField(required=False, max_length=255)
    institution = forms.CharField(required=False, max_length=255)
    classification = forms.CharField(required=False, max_length=255)


class QueryForm(FilterForm):
    """The search API's query string: the words and the filters."""

    q = forms.CharField(required=False, max_length=500)


class SearchForm(QueryForm):
    """The search page's query string: the words, the filters and the page."""

    page = forms.IntegerField(required=False, min_value=1, max_value=1000)


class LabelFilterForm(forms.Form):
    """The label browser's filters. By default only labels with artworks are listed, by name;
    ``show=all`` adds the vocabulary's labels that no artwork carries yet."""

    group = forms.CharField(required=False, max_length=50)
    name = forms.CharField(required=False, max_length=100)
    show = forms.ChoiceField(required=False, choices=[("", "with artworks"), ("all", "all")])
    sort = forms.ChoiceField(required=False, choices=[("", "name"), ("count", "most artworks")])


class PromptLabelForm(forms.Form):
    name = forms.CharField(max_length=200)
    prompt = forms.CharField(required=False, max_length=1000)
    group = forms.CharField(required=False, max_length=50)

    def clean_group(self) -> str:
        return self.cleaned_data.get("group") or "curated"


class CollectionForm(forms.Form):
    """A new collection's fields (saving from search results, a label page or the map) and an
    existing one's edit form."""

    title = forms.CharField(required=False, max_length=255)
    description = forms.CharField(required=False, max_length=5000)
    is_public = forms.BooleanField(required=False)
    collection = forms.SlugField(required=False, max_length=255)
    from_label = forms.SlugField(required=False, max_length=255)


class ThresholdForm(forms.Form):
    threshold = forms.FloatField(required=False, min_value=-1.0, max_value=1.0)
