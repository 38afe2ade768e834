"""Web pages (dashboard, portal, admin) and their static assets."""
