"""The admin audit log: who changed which user, team, workflow or shared macro, and who
applied which macro to which ticket."""
