"""Celery bound to the Flask app: every task runs inside an app context.

Follows Flask's Celery example: a Task base class whose ``__call__`` pushes the app context, and
the Celery app stored as ``app.extensions["celery"]``. Workers get it from ``workers``.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, Task
from flask import Flask


def init_celery(app: Flask) -> Celery:
    class FlaskTask(Task):
        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            with app.app_context():
                return self.run(*args, **kwargs)

    celery_app = Celery(app.name, task_cls=FlaskTask)
    celery_app.config_from_object(app.config["CELERY"])
    celery_app.set_default()
    app.extensions["celery"] = celery_app
    return celery_app
