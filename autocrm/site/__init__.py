"""Site-wide choices an admin makes in the console (not deployment settings, which are
environment variables: see ``autocrm.config``)."""
