"""The public "find your doppelganger" page: a visitor's face against the faces painted in the collection."""
