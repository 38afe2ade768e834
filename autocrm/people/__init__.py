"""People: users (customers, agents, admins), authentication, teams and their members."""
