"""The admin audit log: who changed which user, team, workflow or shared canned response."""
