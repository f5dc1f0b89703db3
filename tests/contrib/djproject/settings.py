"""A minimal Django project whose tasks run on Job Handler (tests/contrib/test_django.py)."""

import os

SECRET_KEY = "only-for-tests"
USE_TZ = True
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "tests.contrib.djproject.urls"
INSTALLED_APPS = ["tests.contrib.djproject"]
_STORE = os.environ.get("DJPROJECT_DATABASE_URL", "sqlite:///dj.db")
# Django's own database is the store's file: a task enqueued in transaction.atomic() joins it.
DATABASES: dict[str, dict[str, str]] = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": _STORE.removeprefix("sqlite:///")}
}
TASKS = {
    "default": {
        "BACKEND": "jobhandler.contrib.django.JobHandlerBackend",
        "QUEUES": ["default", "reports"],
        "OPTIONS": {
            "DATABASE_URL": _STORE,
            "TASK_OPTIONS": {
                "tests.contrib.djproject.tasks.broken": {"MAX_ATTEMPTS": 1},
                "tests.contrib.djproject.tasks.flaky": {"MAX_ATTEMPTS": 2, "TIMEOUT": 30},
                "tests.contrib.djproject.tasks.report": {
                    "CONCURRENCY_KEY_FROM": "name",
                    "KEY_CONCURRENCY": 2,
                },
            },
        },
    }
}
