from django import forms

from .service import MAX_FACES


class LookupForm(forms.Form):
    """What a visitor sends: a photo and, when it shows several people, which face to use."""

    photo = forms.FileField(required=False)
    image = forms.FileField(required=False)  # the API's field name; either is accepted
    face = forms.IntegerField(required=False, min_value=0, max_value=MAX_FACES - 1)

    def upload(self):
        return self.cleaned_data.get("photo") or self.cleaned_data.get("image")


class NotAFaceForm(forms.Form):
    """A curator's decision on one detected face: "1" marks it as not a face, "0" undoes that."""

    value = forms.ChoiceField(choices=[("1", "not a face"), ("0", "a face")], required=False)
    next = forms.CharField(required=False)
