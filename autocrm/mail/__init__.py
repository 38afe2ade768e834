"""Email: the mailer interface that sends (SMTP, or the console in development), the IMAP
client that fetches a mailbox's mail (``imap``), and mailbox passwords at rest (``secrets``)."""
