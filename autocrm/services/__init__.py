"""The service layer: the one path every change takes.

HTTP handlers, socket handlers and Celery tasks call these functions; each authorizes through
``autocrm.policies``, changes the models, records audit and outbox events, and owns the
transaction (it commits; callers never do). Naming: ``check_*`` validates, ``do_*`` writes and
records events, ``access_*_by_id`` fetches with a permission check.
"""
