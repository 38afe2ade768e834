"""Attachments: files on tickets, replies and notes, in content-addressed storage."""
