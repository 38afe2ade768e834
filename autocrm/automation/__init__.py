"""Automation: what rules, SLA escalations and assignment do after a change, and what the beat
sweep does because time passed. Every automated change names its cause in the trail.
"""
