"""SLA clocks: started, paused, resumed, retargeted and stopped as a ticket changes; their
deadlines live in the database, indexed, for the beat sweep.
"""
