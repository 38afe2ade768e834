"""Notifications: in-app records and emails to the people a change concerns, each user's
email preferences, and the delivery of queued emails.
"""
