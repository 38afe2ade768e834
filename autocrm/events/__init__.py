"""Domain events: the outbox they are written to in the transaction of the change, the relay
that hands them to Celery after commit, and the dispatch of each to its handlers.
"""
