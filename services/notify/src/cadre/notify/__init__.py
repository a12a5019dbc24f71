"""The notify service: Inbox, live stream, webhooks, email and scheduled reminders."""
