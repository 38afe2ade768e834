"""The demo data ``make run`` and ``flask seed-demo`` load: not a service, a user of them."""
