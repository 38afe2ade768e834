"""Team performance reports (TeamOverview), aggregated in SQL."""
