"""A minimal Django project whose tasks run on Job Handler (tests/contrib/test_django.py)."""

import os

SECRET_KEY = "only-for-tests"
USE_TZ = True
INSTALLED_APPS = ["tests.contrib.djproject"]
DATABASES: dict[str, dict[str, str]] = {}
TASKS = {
    "default": {
        "BACKEND": "jobhandler.contrib.django.JobHandlerBackend",
        "QUEUES": ["default", "reports"],
        "OPTIONS": {"DATABASE_URL": os.environ.get("DJPROJECT_DATABASE_URL", "sqlite:///dj.db")},
    }
}
