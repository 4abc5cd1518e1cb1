"""Static files under a production server: WhiteNoise, quiet when ``STATIC_ROOT`` was never
collected (tests, and the demo's development server, which serves static files itself)."""
from __future__ import annotations

import os

from whitenoise.middleware import WhiteNoiseMiddleware


class StaticFilesMiddleware(WhiteNoiseMiddleware):
    def add_files(self, root, prefix=None):
        if os.path.isdir(root):
            super().add_files(root, prefix)
