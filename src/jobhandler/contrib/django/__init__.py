"""Job Handler as a backend of Django's tasks framework (``django.tasks``, or the ``django-tasks``
backport before Django 6)::

    TASKS = {
        "default": {
            "BACKEND": "jobhandler.contrib.django.JobHandlerBackend",
            "QUEUES": ["default", "emails"],
            "OPTIONS": {"DATABASE_URL": "postgresql://app@db/jobs"},  # any Settings field
        }
    }

A ``@task`` function's ``.enqueue()`` stores a job (its task is the function's import path,
its payload the call's arguments) and returns a ``TaskResult`` whose id is the job's id;
``get_result``/``refresh`` read the job back. Workers run the functions::

    DJANGO_SETTINGS_MODULE=mysite.settings jobhandler worker \\
        --app jobhandler.contrib.django.worker:app --database postgresql://app@db/jobs

See docs/how-to/django.md.
"""

from jobhandler.contrib.django.backend import JobHandlerBackend, app

__all__ = ["JobHandlerBackend", "app"]
