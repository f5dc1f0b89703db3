"""The worker's side: ``jobhandler worker --app jobhandler.contrib.django.worker:app``.

Reading ``app`` here sets Django up (``DJANGO_SETTINGS_MODULE``) and imports every installed
app's ``tasks`` module, which registers their Django tasks with the App (see backend.py). Done
on first read, not on import, so importing this module alone (tools, docs) needs no settings.
"""

from __future__ import annotations

from jobhandler.app import App
from jobhandler.contrib.django import backend


def __getattr__(name: str) -> App:
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import django  # type: ignore[import-untyped, unused-ignore]
    from django.utils.module_loading import (  # type: ignore[import-untyped, unused-ignore]
        autodiscover_modules,
    )

    django.setup()
    autodiscover_modules("tasks")
    globals()["app"] = backend.app
    return backend.app
