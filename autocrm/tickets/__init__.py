"""Tickets: the ticket itself (create, change, transition, bulk), its conversation and
feedback, its audit trail, and the reads the agent's queue needs.
"""
