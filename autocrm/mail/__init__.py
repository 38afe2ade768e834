"""Email: the mailer interface that sends (SMTP, or the console in development)."""
