"""Canned responses: reply templates agents insert, private or shared with a team."""
